"""The causal survival forest's moment forest on econml's GRF base (``forest_engine="econml"``).

econml's ``BaseGRF`` takes per-sample A (``alpha``) and J (``pointJ``); with ``criterion="het"``
its split search regresses the GRF gradient pseudo-outcomes of the parent node, as grf does for
this forest. The default engine is hte's own (``hte.estimators.histogram_grf``), so this module,
and econml's GRF with it (about 0.3 s to import), is loaded only when a forest asks for econml's
tree builder.
"""

from __future__ import annotations

import numpy as np
from econml.grf._base_grf import BaseGRF
from econml.grf._base_grftree import GRFTree


class MomentForest(BaseGRF):
    """GRF for a scalar linear moment J theta - A = 0 with per-sample A (as y) and J (as T)."""

    def _get_alpha_and_pointJ(self, X, T, y):
        return y, T

    def _get_n_outputs_decomposition(self, X, T, y):
        return 1, 1

    def _make_estimator(self, append=True, random_state=None):
        """One unfitted tree, built directly instead of through ``sklearn.clone``.

        econml clones the template tree and sets its seed through ``get_params`` /
        ``set_params``, which inspects signatures: about a sixth of a 2,000-tree fit's CPU time at
        n = 2,000. This draws the same single seed from ``random_state`` (the tree's only
        ``random_state`` parameter), so the trees and predictions are identical.
        """
        params = {name: getattr(self, name) for name in self.estimator_params}
        if random_state is not None:
            params["random_state"] = random_state.randint(np.iinfo(np.int32).max)
        tree = GRFTree(**params)
        if append:
            self.estimators_.append(tree)
        return tree
