"""Problems found in a cohort: each broken rule with its column, example rows and count, and the
one error that lists them all (``CohortValidationError``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hte.errors import HteError

MAX_EXAMPLE_ROWS = 5
TABLE = "(table)"  # the column name of problems that concern the whole table


@dataclass(frozen=True)
class Problem:
    """One broken rule: the column, the rule in words, up to 5 example rows and how many rows break it.

    ``n_rows`` is 0 for table-level problems (a missing column, a one-arm cohort).
    """

    column: str
    rule: str
    rows: list[int] = field(default_factory=list)
    n_rows: int = 0
    hint: str = ""  # how to fix it, e.g. the column-map entry that would read the values

    def __str__(self) -> str:
        text = f"{self.column}: {self.rule}"
        if self.n_rows:
            text += f" ({describe_rows(self.rows, self.n_rows)})"
        return f"{text}; {self.hint}" if self.hint else text


def describe_rows(rows: list[int], n_rows: int) -> str:
    """Example rows in words: "row 3", "rows 1, 4 and 9 more"."""
    shown = ", ".join(str(r) for r in rows)
    more = f" and {n_rows - len(rows)} more" if n_rows > len(rows) else ""
    return f"{'row' if n_rows == 1 else 'rows'} {shown}{more}"


class CohortValidationError(HteError, ValueError):
    """The cohort breaks the schema; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"- {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the cohort:\n{lines}")


# --------------------------------------------------------------------------------------------
# Bookkeeping while checking: full row positions per (column, rule), cut to examples at the end.


@dataclass
class Found:
    """A problem while checking: every row position that breaks the rule (0-based)."""

    column: str
    rule: str
    positions: np.ndarray  # 0-based row positions; empty for table-level problems
    hint: str = ""

    def to_problem(self) -> Problem:
        rows = [int(p) + 1 for p in self.positions[:MAX_EXAMPLE_ROWS]]
        return Problem(self.column, self.rule, rows, len(self.positions), self.hint)


def row_positions(mask: pd.Series | np.ndarray) -> np.ndarray:
    """0-based positions of the True rows of a mask."""
    return np.flatnonzero(np.asarray(mask, dtype=bool))
