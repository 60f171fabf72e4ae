"""The 0/1 CRS outcomes (any grade, grade >= 3) and the checked fit inputs of every CRS learner.

``outcome="crs_g3"`` uses ``crs_grade >= 3`` on the rows that have a grade; the others are
excluded from that outcome, counted and warned about, never silently dropped.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from hte.array_checks import check_binary_outcome, check_covariates, check_treatment
from hte.vocabulary import CRS_TARGETS

CRS_OUTCOMES = CRS_TARGETS  # the CRS targets of hte.vocabulary


def crs_binary_outcome(crs, crs_grade, outcome: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The 0/1 outcome for ``outcome`` and the mask of rows that carry it.

    ``"crs"``: any-grade CRS, every row. ``"crs_g3"``: ``crs_grade >= 3``, only rows with a grade;
    an error if no row has a grade or a recorded grade contradicts ``crs`` (grade >= 1, crs 0).
    """
    if outcome not in CRS_OUTCOMES:
        raise ValueError(f"outcome must be one of {CRS_OUTCOMES}; got {outcome!r}")
    if outcome == "crs":
        if crs is None:
            raise ValueError("outcome='crs' needs the crs column (any-grade CRS, 0/1)")
        return check_binary_outcome(crs, n, name="crs"), np.ones(n, dtype=bool)
    if crs_grade is None:
        raise ValueError("outcome='crs_g3' needs crs_grade (ASTCT grade 0-5)")
    grade = pd.to_numeric(pd.Series(np.asarray(crs_grade, dtype=object)), errors="coerce")
    grade = grade.to_numpy(dtype=float)
    if grade.shape != (n,):
        raise ValueError(f"crs_grade must have shape ({n},); got {grade.shape}")
    observed = ~np.isnan(grade)
    if not observed.any():
        raise ValueError(
            "crs_grade is missing for every patient: the grade >= 3 effect cannot be estimated "
            "(use outcome='crs' for any-grade CRS)"
        )
    bad = observed & ((grade < 0) | (grade > 5) | (grade != np.round(grade)))
    if bad.any():
        raise ValueError(
            f"crs_grade must be an integer 0-5; rows {np.flatnonzero(bad)[:5].tolist()} are not"
        )
    if crs is not None:
        any_crs = np.asarray(crs).astype(float)
        clash = observed & (grade >= 1) & (any_crs == 0)
        if clash.any():
            raise ValueError(
                f"crs_grade >= 1 but crs == 0 in rows {np.flatnonzero(clash)[:5].tolist()}: "
                "grade and any-grade CRS disagree"
            )
    y = np.zeros(n, dtype=int)
    y[observed] = (grade[observed] >= 3).astype(int)
    return y, observed


def crs_fit_inputs(X, crs, treatment, crs_grade, outcome: str):
    """Checked fit inputs of a CRS estimator: ``(Xa, names, w, y, keep)``, the first four over the
    rows ``keep`` that carry ``outcome`` (patients without a grade leave grade >= 3 fits, with a
    warning)."""
    Xa, names = check_covariates(X)
    n = Xa.shape[0]
    if treatment is None:
        raise ValueError("treatment is required (0 = teclistamab, 1 = CAR-T)")
    w = check_treatment(treatment, n)
    y, keep = crs_binary_outcome(crs, crs_grade, outcome, n)
    warn_missing_grade(int((~keep).sum()), n)
    Xa, w, y = Xa[keep], w[keep], y[keep]
    check_treatment(w, w.shape[0])
    check_binary_outcome(y, y.shape[0], name=outcome)
    return Xa, names, w, y, keep


def warn_missing_grade(n_excluded: int, n: int) -> None:
    """Say how many patients the grade >= 3 outcome leaves out (never silent)."""
    if n_excluded:
        warnings.warn(
            f"crs_g3: {n_excluded} of {n} patients have no recorded crs_grade and are excluded "
            "from the grade >= 3 outcome",
            UserWarning,
            stacklevel=3,
        )
