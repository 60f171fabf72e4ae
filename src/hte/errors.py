"""hte's errors: ``HteError`` marks a problem hte diagnosed and explained (bad input, a config, a
run folder, a sweep, a model that cannot be fitted to the data), as opposed to a bug.

Each named error subclasses it and keeps its builtin base (``ValueError`` or ``RuntimeError``), so
``except ValueError`` code still catches it: ``ConfigError``, ``CohortValidationError``,
``CohortFileError``, ``ColumnMapError``, ``OmopError``, ``SweepError``, ``ModelIntegrityError``,
``FitError``, ``PredictError``, ``ProfileError``, ``RunFolderError``, ``UploadRefused`` and
``InvalidProfile`` (docs/errors.md lists where each comes from).

Where a stage may fail without stopping a run (one estimator, the attributions, the robustness
checks, one sweep cell), it catches ``STAGE_FAILURES`` only and records what failed; anything
else is a bug and stops the run with its traceback.
"""

from __future__ import annotations

from concurrent.futures import BrokenExecutor


class HteError(Exception):
    """A problem hte diagnosed and explained in its message (never a bug)."""


class FitError(HteError, RuntimeError):
    """A model that cannot be fitted to this data (no convergence, separation); the message says
    how to fix it."""


# What a stage that may fail without stopping the run catches, records and survives:
# - HteError: a problem hte diagnosed (bad input, a model it cannot fit);
# - ValueError: bad or degenerate data as numpy, scikit-learn, lifelines, econml and our own
#   checks report it (numpy's LinAlgError, lifelines' ConvergenceError, scikit-survival's
#   NoComparablePairException and pyarrow's ArrowInvalid are ValueErrors);
# - ArithmeticError: overflow or division by zero on extreme data;
# - MemoryError: a model too large for the machine (the fix says: fewer patients or trees), and
#   BrokenExecutor: a fit's worker processes killed under it (joblib's TerminatedWorkerError,
#   usually the system running out of memory).
# TypeError, AttributeError, KeyError, IndexError, NameError, RuntimeError, ... are bugs: they
# propagate and stop the run with their traceback.
STAGE_FAILURES: tuple[type[BaseException], ...] = (
    HteError,
    ValueError,
    ArithmeticError,
    MemoryError,
    BrokenExecutor,
)


def describe_failure(exc: BaseException) -> str:
    """The recorded text of a failure: its type and message ("ValueError: ...")."""
    return f"{type(exc).__name__}: {exc}"


# (words in the error, the fix): the first match wins
_FIXES = (
    ("horizon", "choose a horizon within every arm's follow-up (outcomes.os)"),
    (
        "penalizer",
        "drop collinear or sparse covariates (column map: exclude) or raise params.penalizer",
    ),
    (
        "converge",
        "drop collinear or sparse covariates (column map: exclude), or set a penalty "
        "in params (penalizer / penalty)",
    ),
    ("only one arm", "the analysed cohort needs patients in both arms"),
    ("no events", "the analysed cohort needs deaths in both arms"),
    ("missing values", "give the covariate's missing values, or exclude it in the column map"),
)


def failure_fix(exc: BaseException, kind: str) -> str:
    """A plain fix for a failed fit, from its error (recorded beside the error in metrics)."""
    if isinstance(exc, MemoryError):
        return f"{kind} ran out of memory: fewer patients, trees or bootstrap draws"
    text = str(exc).casefold()
    for words, fix in _FIXES:
        if words in text:
            return fix
    return f"see run.log for the traceback; run the other estimators without {kind}"
