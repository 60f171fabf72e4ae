"""``hte run`` with the fitted models saved in the background (as shipped) or in place.

python -m benchmarks.save_models_ab MODE OUTPUT_ROOT [CONFIG]

MODE ``background`` runs the pipeline as it is; ``in-place`` swaps
``hte.pipeline.model_saving.BackgroundSaving`` for one that saves in this thread when it is asked
to start, where the run used to save. Run the two alternately and compare the runs'
``timings.json`` totals; their ``metrics.json`` must be the same bytes (docs/speed.md).
"""

from __future__ import annotations

import sys

import hte.pipeline.run as run
from hte.cli import app
from hte.pipeline.model_saving import BackgroundSaving, save_models


class SavingInPlace(BackgroundSaving):
    """Saves each analysis's models at ``start``, in this thread; ``wait`` records the time."""

    def start(self, data, fits) -> None:
        if self.store is not None:
            self._pending.append((data.label, save_models(self.store, data, fits)))

    def wait(self, timings: dict[str, float]) -> None:
        pending, self._pending = self._pending, []
        for label, seconds in pending:
            timings[f"{label}/save_models (in place)"] = seconds


def main(argv: list[str]) -> None:
    if len(argv) not in (2, 3) or argv[0] not in ("background", "in-place"):
        raise SystemExit(__doc__)
    if argv[0] == "in-place":
        run.BackgroundSaving = SavingInPlace
    config = argv[2] if len(argv) == 3 else "configs/default.yaml"
    sys.argv = ["hte", "run", config, "--no-progress", "--output-root", argv[1]]
    app()


if __name__ == "__main__":
    main(sys.argv[1:])
