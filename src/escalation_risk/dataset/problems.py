"""Problems found in a district's tables: the error, the report's rows and their wording.

A problem names table, row, column and reason. Its value is shown only where it is a
number or a date in a numeric or date column (masked all the same); anything else
(a code, an id, a name typed where a number belongs) is shown as its length, so a
report never repeats what someone typed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..contract import TABLES, TableSpec, is_safe_id
from ..masking import mask_identifiers
from ..outputs import allowed

MAX_LISTED = 10

#: How every strict load's error ends: the way to keep the good rows.
QUARANTINE_HINT = ('\nTo keep the good rows and set the bad ones aside (listed in ds.quarantine), load with '
                   'errors="quarantine".')


class DataValidationError(ValueError):
    """Input that breaks the data contract.

    ``problems`` is a DataFrame with columns table, row, column, value, reason; the
    message lists the first few and counts the rest. Values of personal-data
    columns never appear (they are pseudonymised before validation).
    """

    def __init__(self, problems: pd.DataFrame):
        # Only the declared columns of a problem row, whatever the caller assembled.
        self.problems = allowed(problems.reset_index(drop=True), "problems")
        lines = [_describe(p) for p in self.problems.head(MAX_LISTED).itertuples()]
        more = len(self.problems) - MAX_LISTED
        if more > 0:
            lines.append(f"... and {more} more problem(s)")
        rows = pd.to_numeric(self.problems["row"], errors="coerce") if "row" in self.problems else pd.Series([])
        hint = QUARANTINE_HINT if (rows >= 0).any() else ""  # a missing table or column: quarantine cannot help
        super().__init__(f"{len(self.problems)} data contract problem(s):\n  " + "\n  ".join(lines) + hint)


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


# The kinds whose bad value a report may show, and the characters such a value is made of
# (digits and the punctuation of numbers and dates): anything else is shown by its length.
SHOWN_KINDS = frozenset({"int", "float", "timestamp"})
_NUMBER_OR_DATE = re.compile(r"^[0-9.,:/ T+\-eE]*\Z")
_KINDS = {n: {c.name: c.kind for c in t.columns} for n, t in TABLES.items()}


def column_kind(table: str, column: str) -> str | None:
    """The contract's kind of ``table.column`` (None for a table or column it does not declare)."""
    return _KINDS.get(table, {}).get(column)


def shown_value(table: str, column: str, v, kind: str | None = None) -> str:
    """What a report may say of the bad value ``v`` of ``table.column``: the value (masked)
    when the column is numeric or a date and the value a number or a date; "" for personal
    data and free text; its length otherwise. ``kind`` names the kind of a field outside
    the contract (an API's own parameter); the contract's kind wins."""
    if v is None or (not isinstance(v, (list, tuple, np.ndarray)) and pd.isna(v)):
        return ""
    kind = column_kind(table, column) or kind
    if kind in ("pii", "text") or column in HIDDEN_COLUMNS.get(table, ()):
        return ""
    if kind in SHOWN_KINDS and (not isinstance(v, str) or _NUMBER_OR_DATE.match(v.strip())):
        return mask_identifiers(_short(v))
    return f"[{len(str(v))} characters]"


def rejected_value(table: str, column: str, v):
    """A cell of a rejected-row file: a valid code, a safe id, a number or a date as it was
    read; a value in a ``str`` column (a town) masked; anything else its length."""
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is pd.NaT:
        return v
    col = TABLES[table].column(column)
    if not isinstance(v, str):
        return v if col.kind in (*SHOWN_KINDS, "bool") else f"[{len(str(v))} characters]"
    s = v.strip()
    if col.kind == "id" and is_safe_id(s) or col.codes is not None and s.lower() in col.codes \
            or col.kind in (*SHOWN_KINDS, "bool") and _NUMBER_OR_DATE.match(s):
        return v
    if col.kind == "str":
        return mask_identifiers(v)
    return f"[{len(v)} characters]"


def _problems(table: str, rows: Iterable[int], column: str, values: Iterable, reason: str) -> pd.DataFrame:
    rows = list(rows)
    shown = [shown_value(table, column, v) for v in values] if rows else []
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

