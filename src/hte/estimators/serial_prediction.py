"""Forest predictions in one thread, so the same fitted model gives the same numbers every time.

econml's forests (GRF, causal and regression forests) and scikit-learn's random forests predict with
``n_jobs`` threads that add their trees' outputs into one array in whatever order the threads
finish. Floating-point addition is not associative, so two predictions of the same rows can differ
in the last bits, and a run's metrics.json (and anything ranked or split on the predictions) with
them. Fitting stays multi-threaded: each tree is grown from its own seed, so the fit is the same
whatever the threads do; only the summing is serialized.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def predict_in_one_thread(*models: Any) -> None:
    """Set ``n_jobs = 1`` on each fitted forest given and on the forests inside it (in place).

    A forest's own trees have no ``n_jobs`` and are left alone; a multi-output forest's member
    forests (econml's ``MultiOutputGRF.estimators_``) are reached through ``estimators_``.
    """
    stack = list(models)
    while stack:
        model = stack.pop()
        if hasattr(model, "n_jobs"):
            model.n_jobs = 1
        members = getattr(model, "estimators_", None)  # a list, or boosting's array of trees
        if members is None:
            continue
        stack.extend(
            member
            for member in (members.ravel() if isinstance(members, np.ndarray) else members)
            if hasattr(member, "n_jobs") or hasattr(member, "estimators_")
        )
