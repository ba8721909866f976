"""Problems found in a district's tables: the error, the report's rows and their wording.

A problem names table, row, column and reason; its value is shown only masked, and
never for personal-data or free-text columns.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..contract import TABLES, TableSpec
from ..masking import mask_identifiers

MAX_LISTED = 10

class DataValidationError(ValueError):
    """Input that breaks the data contract.

    ``problems`` is a DataFrame with columns table, row, column, value, reason; the
    message lists the first few and counts the rest. Values of personal-data
    columns never appear (they are pseudonymised before validation).
    """

    def __init__(self, problems: pd.DataFrame):
        self.problems = problems.reset_index(drop=True)
        lines = [_describe(p) for p in self.problems.head(MAX_LISTED).itertuples()]
        more = len(self.problems) - MAX_LISTED
        if more > 0:
            lines.append(f"... and {more} more problem(s)")
        super().__init__(f"{len(self.problems)} data contract problem(s):\n  " + "\n  ".join(lines))


def _describe(p) -> str:
    where = f"table {p.table!r}"
    if p.column:
        where += f", column {p.column!r}"
    if p.row is not None and not pd.isna(p.row) and int(p.row) >= 0:
        where += f", row {int(p.row)}"
    line = getattr(p, "line", None)
    if line is not None and not pd.isna(line):
        where += f" (line {int(line)} of the file)"
    value = f" (value {p.value})" if p.value else ""
    return f"{where}: {p.reason}{value}"


PROBLEM_COLUMNS = ["table", "row", "column", "value", "reason"]
# What happened to the row a problem was found in (the report's ``action`` column).
SET_ASIDE = "row set aside"
NULLED = "value set to missing, row kept"
# Columns whose values are never shown in a report: personal identifiers and free text.
HIDDEN_COLUMNS = {n: frozenset(c.name for c in t.columns if c.kind in ("pii", "text")) for n, t in TABLES.items()}


def _problems(table: str, rows: Iterable[int], column: str, values: Iterable, reason: str) -> pd.DataFrame:
    rows = list(rows)
    hidden = column in HIDDEN_COLUMNS.get(table, ())
    # A bad code can still hold what someone typed (a name, a phone): show it masked.
    shown = ["" if hidden or pd.isna(v) else mask_identifiers(_short(v)) for v in values] if rows else []
    return pd.DataFrame({"table": table, "row": pd.array(rows, dtype="Int64"), "column": column,
                         "value": shown, "reason": reason}, columns=PROBLEM_COLUMNS)


def _short(v) -> str:
    if isinstance(v, (np.datetime64, pd.Timestamp)):
        v = pd.Timestamp(v).isoformat()
    s = repr(v) if isinstance(v, str) else str(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _structural(table: str, column: str, reason: str) -> DataValidationError:
    return DataValidationError(pd.DataFrame([{"table": table, "row": pd.NA, "column": column,
                                              "value": "", "reason": reason}], columns=PROBLEM_COLUMNS))



def _require_columns(spec: TableSpec, columns) -> None:
    """Raise (whatever the error mode) when required columns are absent: nothing to keep."""
    absent = [c.name for c in spec.columns if c.required and c.name not in columns]
    if absent:
        raise DataValidationError(pd.concat(
            [_structural(spec.name, c, "required column is missing").problems for c in absent], ignore_index=True))

