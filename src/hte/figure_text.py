"""Text in hte's figures is data: category levels, column names, estimator names. matplotlib reads
text between two ``$`` signs as mathtext, so a category value such as ``$\\alpha_{$`` would be
parsed as a formula and stop the figure (and with it the report, or the app at start).

``plain_text()`` turns mathtext off (``text.parse_math``) for every text matplotlib creates from
then on; each module that draws calls it on import, so no label path can miss it. hte draws no
formulas, so nothing is lost.
"""

from __future__ import annotations

import matplotlib


def plain_text() -> None:
    """Render all figure text literally (no mathtext)."""
    matplotlib.rcParams["text.parse_math"] = False
