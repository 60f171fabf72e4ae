"""hte's error base: ``HteError`` marks a problem hte diagnosed and explained (bad input, a config,
a run folder, a sweep), as opposed to a bug.

Each named error (``ConfigError``, ``CohortValidationError``, ``CohortFileError``,
``ColumnMapError``, ``OmopError``, ``SweepError``, ``ModelIntegrityError``) subclasses it and keeps
its builtin base (``ValueError`` or ``RuntimeError``), so ``except ValueError`` code still catches
it. Where a stage may fail without stopping a run, catch ``HteError`` (and say what failed) rather
than ``Exception``, so a bug still stops the run with its traceback.
"""

from __future__ import annotations


class HteError(Exception):
    """A problem hte diagnosed and explained in its message (never a bug)."""
