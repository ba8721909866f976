"""Parsing of a column's raw cells into its contract type (vectorised and one value at a time)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import clock
from ..contract import ID_RULE, TABLES, Column, TableSpec, is_safe_id, safe_ids
from ..lookup import arrow_strings  # noqa: F401 (importable from here)
from .problems import _problems

# Strings keep NaN as their missing value so numpy-style masks keep working.
STR_DTYPE = pd.StringDtype(na_value=np.nan)
NOT_FINITE = "not a finite number"
_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no"}


def _as_str(s: pd.Series) -> pd.Series:
    """Strings with NaN for missing; blank cells count as missing."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    text = s.astype(STR_DTYPE)
    out = text.str.strip()
    # Nothing to strip (the usual case): the column as read, sharing the raw column's
    # buffers rather than holding a second copy of a million ids beside it.
    if out.equals(text):
        out = text
    blank = (out == "").to_numpy(dtype=bool, na_value=False)
    return out.where(~blank) if blank.any() else out


def arrow_text(values: pd.Series) -> pa.ChunkedArray | None:
    """The Arrow strings behind an Arrow-backed text column (None for any other column)."""
    arr = getattr(values.array, "_pa_array", None)
    if isinstance(arr, pa.ChunkedArray) and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return arr
    return None


def _unsafe_ids(ids: pd.Series) -> np.ndarray:
    """Whether each id (strings, NaN for missing) breaks the id rule; missing ids do not.
    Arrow-backed ids are judged row by row through Arrow's regex engine, which reads a
    million ids in a fraction of the time hashing them takes (to judge each distinct one
    once); other columns are judged once per distinct value."""
    arr = arrow_text(ids)
    if arr is not None:
        present = arr.is_valid()
        bad = np.zeros(len(ids), dtype=bool)
        where = np.flatnonzero(present.to_numpy(zero_copy_only=False).astype(bool))
        if len(where):
            bad[where] = ~safe_ids(arr.filter(present))
        return bad
    codes, uniques = pd.factorize(ids)
    if not len(uniques):
        return np.zeros(len(ids), dtype=bool)
    verdict = safe_ids(pa.array(uniques))
    return (codes >= 0) & ~verdict[np.maximum(codes, 0)]


def _parse_column(table: str, col: Column, raw: pd.Series) -> tuple[pd.Series, pd.DataFrame | None]:
    """Parse one column into its contract type; values that do not parse are problems."""
    kind = col.kind
    if kind == "id":
        out = _as_str(raw)
        return out, _bad(table, col, raw, pd.Series(_unsafe_ids(out), index=raw.index, dtype=bool), ID_RULE)
    if kind in ("str", "text", "pii"):
        return _as_str(raw), None
    if kind == "code":
        # Codes stay strings here; the schema checks them, then they become categoricals.
        return _as_str(raw).str.lower(), None
    if kind == "timestamp":
        if pd.api.types.is_datetime64_any_dtype(raw.dtype):
            # An aware column (Parquet with a zone) is converted to the zone, never stripped.
            return clock.localize_column(raw), None
        text = _as_str(raw)
        out, bad = _parse_timestamps(text)
        return out, _bad(table, col, raw, bad, BAD_TIMESTAMP)
    if kind in ("int", "float"):
        if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
            out = raw.astype("float64")
            bad = pd.Series(False, index=raw.index)
        else:
            text = _as_str(raw)
            out = pd.to_numeric(text, errors="coerce").astype("float64")
            bad = text.notna() & out.isna()
        probs = _bad(table, col, raw, bad, "not a number")
        infinite = out.notna() & ~np.isfinite(out.fillna(0))
        if infinite.any():
            out = out.where(~infinite)
            probs = pd.concat([p for p in (probs, _bad(table, col, raw, infinite, NOT_FINITE)) if p is not None])
        if kind == "int":
            frac = out.notna() & (out != np.floor(out.fillna(0)))
            out = out.where(~frac)
            fracp = _bad(table, col, raw, frac, "not a whole number")
            probs = pd.concat([p for p in (probs, fracp) if p is not None]) if fracp is not None else probs
            return out.astype("Int64"), probs
        return out, probs
    if kind == "bool":
        text = _as_str(raw).str.lower()
        out = pd.Series(pd.NA, index=raw.index, dtype="boolean")
        out[text.isin(_TRUE)] = True
        out[text.isin(_FALSE)] = False
        bad = text.notna() & out.isna()
        return out, _bad(table, col, raw, bad, "not a boolean (true/false/1/0)")
    raise AssertionError(kind)


# The documented forms: ISO 8601 dates and date-times (``T`` or a space before the time),
# and the same with ``/`` between the date's parts as Chinese systems often export. An
# offset (``+08:00``, ``Z``) is converted to the zone: the contract's times are naive local times.
TIMESTAMP_FORMATS = "2024-03-05, 2024-03-05T14:20:00, 2024-03-05 14:20 or 2024/03/05 (an offset is converted)"
BAD_TIMESTAMP = f"not an ISO 8601 timestamp (documented forms: {TIMESTAMP_FORMATS})"
# One reading of recorded times for both engines: the kernel's (offsets converted, never dropped).
_parse_timestamps = clock.parse_series
_parse_timestamp = clock.parse_one


def _bad(table: str, col: Column, raw: pd.Series, bad: pd.Series, reason: str) -> pd.DataFrame | None:
    if not bad.any():
        return None
    return _problems(table, raw.index[bad.to_numpy()], col.name, raw[bad.to_numpy()], reason)


def _finish_types(spec: TableSpec, df: pd.DataFrame) -> pd.DataFrame:
    for c in spec.columns:
        if c.kind == "code":
            df[c.name] = _categorical(df[c.name], list(c.codes or ()))
    return df


def _categorical(values: pd.Series, categories: list[str]) -> pd.Categorical:
    """``values`` as a categorical of ``categories`` (a value not among them, or missing: NaN).
    Arrow strings are matched to the categories in Arrow: made into a Python string per row
    first, a million people's codes took seconds."""
    arr = arrow_text(values)
    if arr is not None:
        at = pc.index_in(arr, value_set=pa.array(categories, type=arr.type))
        codes = np.asarray(at.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
        return pd.Categorical.from_codes(codes, categories=categories)
    # (a value outside the categories made missing first, as the categorical would: pandas 4 refuses it)
    return pd.Categorical(values.astype(object).where(values.notna() & values.isin(categories)), categories=categories)


def empty_table(name: str) -> pd.DataFrame:
    """An empty frame with the table's contract columns and dtypes."""
    return _empty_table(name).copy()


@functools.cache
def _empty_table(name: str) -> pd.DataFrame:
    # Built once per table: each append of a few rows would otherwise parse ten empty tables.
    spec = TABLES[name]
    df = pd.DataFrame({c.name: pd.Series([], dtype=object) for c in spec.columns})
    parsed = {c.name: _parse_column(name, c, df[c.name])[0] for c in spec.columns}
    return _finish_types(spec, pd.DataFrame(parsed))


def _missing(v) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float) and v != v:
        return True
    return isinstance(v, str) and v.strip() == ""


def _record_value(table: str, col: Column, v, row: int, problems: list):
    """Parse one value like :func:`_parse_column` would; problems go to ``problems``."""
    if _missing(v):
        return None
    kind = col.kind
    if kind == "id":
        s = str(v).strip()
        if not is_safe_id(s):
            problems.append((row, col.name, v, ID_RULE))
        return s
    if kind in ("str", "text", "pii"):
        return str(v).strip()
    if kind == "code":
        return str(v).strip().lower()
    if kind == "timestamp":
        if isinstance(v, (pd.Timestamp, np.datetime64)) or hasattr(v, "isoformat") and not isinstance(v, str):
            # An aware time converted to the zone, as the frame engine converts an aware column.
            return clock.localize(pd.Timestamp(v))
        ts = _parse_timestamp(str(v).strip())
        if ts is None:
            problems.append((row, col.name, v, BAD_TIMESTAMP))
        return ts
    if kind in ("int", "float"):
        if isinstance(v, bool):
            x = float(v)
        else:
            try:
                x = float(str(v).strip()) if isinstance(v, str) else float(v)
            except (TypeError, ValueError):
                problems.append((row, col.name, v, "not a number"))
                return None
            if x != x:
                problems.append((row, col.name, v, "not a number"))
                return None
        if not np.isfinite(x):
            problems.append((row, col.name, v, NOT_FINITE))
            return None
        if kind == "int" and x != np.floor(x):
            problems.append((row, col.name, v, "not a whole number"))
            return None
        return x
    if kind == "bool":
        t = str(v).strip().lower()
        if t in _TRUE:
            return True
        if t in _FALSE:
            return False
        problems.append((row, col.name, v, "not a boolean (true/false/1/0)"))
        return None
    raise AssertionError(kind)


def as_records(rows: Mapping | Iterable[Mapping] | pd.DataFrame, what: str, **defaults) -> list[dict]:
    """Plain dicts from a service request's dict, list of dicts or DataFrame; ``defaults``
    fill absent keys (e.g. the dispute's ``incident_id`` on its parties)."""
    if isinstance(rows, pd.DataFrame):
        rows = rows.to_dict("records")
    elif isinstance(rows, Mapping):
        rows = [rows]
    out = list(rows)
    if not all(isinstance(r, Mapping) for r in out):
        raise TypeError(f"{what} must be a dict or a list of dicts in the contract's columns")
    return [{**defaults, **r} for r in out]


def record_columns(records: Iterable[Mapping]) -> list[str]:
    """The columns of a list of records: every key, in the order first seen (as
    ``pd.DataFrame(records)`` orders them)."""
    return list(dict.fromkeys(k for r in records for k in r))


def read_alike(spec: TableSpec, records: list[dict]) -> bool:
    """Whether ``pd.DataFrame(records).to_dict("records")`` gives the record engine the same
    values as ``records`` themselves: every key a contract column, and no column mixing
    integers with missing values or floats (a frame makes them floats: ``7`` read as ``7.0``).
    Missing values (an absent key read as NaN) and numpy scalars it reads alike."""
    names = spec.column_names
    ints: set[str] = set()
    other: set[str] = set()  # columns holding a float or a missing value
    for r in records:
        for k, v in r.items():
            if k not in names:
                return False
            if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
                ints.add(k)
            elif v is None or isinstance(v, (float, np.floating)) or v is pd.NA or v is pd.NaT:
                other.add(k)
    if not ints:
        return True
    if ints & other:
        return False
    return all(k in r for r in records for k in ints)  # an absent key is a missing value
