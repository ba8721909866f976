"""Read, validate, quarantine and pseudonymise a district's tables.

``load_dataset`` reads a folder of ``NAME.csv`` / ``NAME.parquet`` files in the shape
of the data contract (:mod:`escalation_risk.contract`); ``Dataset.from_frames`` does
the same for DataFrames a notebook or a service already holds. Both go through one
pipeline:

1. structure: required tables and columns present, files readable as UTF-8 tables
   (problems here always raise: there is nothing sensible to keep);
2. identifiers checked (an id number with a valid GB 11643 check digit or the old
   15-digit form, an 11-digit mobile; a bad one is reported by rule and row, never
   its value, and treated as missing), then pseudonymisation of ``name``,
   ``id_number`` and ``phone`` with a keyed hash (HMAC-SHA256, a key of at least 32
   bytes: :mod:`.pseudonym_keys`), *before* anything else looks at the rows, so that
   no raw identifier can reach a DataFrame, a log line or an error message;
3. parsing of every column into its contract type (unparseable values are problems);
4. the contract's row rules, declared once as a pandera schema per table (codes,
   non-null, unique ids, ranges, ``reported_at >= occurred_at``, offence categories
   only on criminal cases);
5. references between tables, checked in dependency order so that the dependants of
   a rejected row are rejected with it.

With ``errors="raise"`` any problem raises :class:`DataValidationError`; with
``errors="quarantine"`` good rows are kept, a bad value in a column the record can
do without (a code, a number, a phone) is blanked with its row kept, and every other
bad row goes to ``ds.quarantine`` (one line per problem: table, row, line of a CSV
file, column, value masked, reason, action) and ``ds.rejected[table]`` (the row's ids,
codes, times and numbers; never free text or personal data). For each table, kept
rows plus rejected rows equal the rows read.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import hmac
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pandera.pandas as pandera_pa
import pyarrow as pa
import pyarrow.compute as pc

from . import clock, normalize
from .contract import (
    ATTRIBUTE_CODES,
    CONTRACT_1_1,
    DISPUTE_CATEGORIES,
    OFFENCE_CATEGORIES,
    PII_COLUMNS,
    REQUIRED_TABLES,
    TABLE_ORDER,
    TABLES,
    Column,
    TableSpec,
)
from .idnumbers import is_valid_id, is_valid_mobile, normalise_id, normalise_phone
from .known import cut_tables
from .masking import mask_identifiers
from .pseudonym_keys import KEY_ENV, KEY_FILE_ENV, PseudonymKeyError, resolve_pseudonym_key  # noqa: F401

log = logging.getLogger(__name__)

# Strings keep NaN as their missing value so numpy-style masks keep working.
STR_DTYPE = pd.StringDtype(na_value=np.nan)
MAX_LISTED = 10
PSEUDONYMISED_MARKER = "PSEUDONYMISED"

ErrorsMode = Literal["raise", "quarantine"]


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
        self.problems = problems.reset_index(drop=True)
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


# --------------------------------------------------------------------------- pseudonymisation

def _normalise_pii(column: str, s: pd.Series) -> pd.Series:
    s = _as_str(s)
    # One written form per identifier (half-width, separators, 15 -> 18 digit ids,
    # traditional -> simplified names): see escalation_risk.normalize.
    if column == "phone":
        s = normalize.normalise_phone(s)
    elif column == "id_number":
        s = normalize.normalise_id(s)
    elif column == "name":
        s = normalize.normalise_name(s)
    return s.where(s.notna() & (s != ""))


def pseudonymise(values: pd.Series, key: bytes, column: str) -> pd.Series:
    """Replace each value by a keyed hash (20 hex chars); nulls stay null.

    Values are normalised first (spaces, case, phone digits) so the same person
    gets the same pseudonym from every source, which record linkage relies on.
    """
    norm = _normalise_pii(column, values)
    uniq = pd.unique(norm.dropna())
    salt = column.encode() + b":"
    table = {v: hmac.new(key, salt + v.encode(), hashlib.sha256).hexdigest()[:20] for v in uniq}
    return norm.map(table).astype(STR_DTYPE)


# --------------------------------------------------------------------------- parsing

NOT_FINITE = "not a finite number"
_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no"}


def _as_str(s: pd.Series) -> pd.Series:
    """Strings with NaN for missing; blank cells count as missing."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    out = s.astype(STR_DTYPE).str.strip()
    return out.where(out != "")


def _parse_column(table: str, col: Column, raw: pd.Series) -> tuple[pd.Series, pd.DataFrame | None]:
    """Parse one column into its contract type; values that do not parse are problems."""
    kind = col.kind
    if kind in ("id", "str", "text", "pii"):
        return _as_str(raw), None
    if kind == "code":
        # Codes stay strings here; the schema checks them, then they become categoricals.
        return _as_str(raw).str.lower(), None
    if kind == "timestamp":
        if pd.api.types.is_datetime64_any_dtype(raw.dtype):
            # An aware column (Parquet with a zone) is converted to the zone, never stripped.
            out = raw.dt.tz_convert(clock.zone()).dt.tz_localize(None) \
                if getattr(raw.dt, "tz", None) is not None else raw
            return out.astype("datetime64[ns]"), None
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


# --------------------------------------------------------------------------- the schema

def _attribute_value_ok(d: pd.DataFrame) -> pd.Series:
    ok = pd.Series(True, index=d.index)
    for attr, codes in ATTRIBUTE_CODES.items():
        m = d["attribute"] == attr
        ok &= ~m | d["value"].isin(codes)
    return ok | d["value"].isna() | d["attribute"].isna()


VALUE_RULE = "not one of its attribute's codes"
OUTCOME_RULE = "must not be before held_at"
BEFORE_REPORT = "must not be before its incident's reported_at"


def _row_rules(spec: TableSpec) -> list[pandera_pa.Check]:
    """Rules that span columns of one row, named 'column: rule' for reporting."""
    if spec.name == "person_attributes":
        return [pandera_pa.Check(_attribute_value_ok, name=f"value: {VALUE_RULE}")]
    if spec.name == "mediations":
        return [pandera_pa.Check(lambda d: d["outcome_at"].isna() | d["held_at"].isna()
                                 | (d["outcome_at"] >= d["held_at"]), name=f"outcome_at: {OUTCOME_RULE}")]
    if spec.name != "incidents":
        return []
    offence = set(OFFENCE_CATEGORIES)
    dispute = set(DISPUTE_CATEGORIES)
    return [
        pandera_pa.Check(lambda d: d["reported_at"].isna() | d["occurred_at"].isna()
                 | (d["reported_at"] >= d["occurred_at"]),
                 name="reported_at: must not be before occurred_at"),
        pandera_pa.Check(lambda d: d["kind"].isna() | d["category"].isna()
                 | np.where(d["kind"] == "criminal_case", d["category"].isin(offence),
                            d["category"].isin(dispute)),
                 name="category: an offence code only on criminal cases, a dispute code otherwise"),
    ]


def table_schema(spec: TableSpec) -> pandera_pa.DataFrameSchema:
    """The pandera schema of one table's row rules, built from its contract spec."""
    cols = {}
    for c in spec.columns:
        checks = []
        if c.codes is not None:
            checks.append(pandera_pa.Check.isin(list(c.codes)))
        if c.min is not None:
            checks.append(pandera_pa.Check.ge(c.min))
        cols[c.name] = pandera_pa.Column(None, checks=checks, nullable=not c.required, unique=c.unique,
                                 report_duplicates="exclude_first", required=True)
    return pandera_pa.DataFrameSchema(cols, checks=_row_rules(spec), name=spec.name)


_SCHEMAS = {name: table_schema(spec) for name, spec in TABLES.items()}
_CODE_DTYPES = {c.codes: pd.CategoricalDtype(list(c.codes)) for spec in TABLES.values() for c in spec.columns
                if c.codes}
_COLUMNS = {c.name: c for spec in TABLES.values() for c in spec.columns if c.codes}


def _reason(check: str, column: str) -> tuple[str, str]:
    if check == "field_uniqueness":
        return column, "duplicate id"
    if check == "not_nullable":
        return column, "required value is missing"
    if ": " in check:  # row rules are named after the column they judge
        col, rule = check.split(": ", 1)
        return col, rule
    if check.startswith("isin("):
        spec_col = _COLUMNS.get(column)
        codes = ", ".join(spec_col.codes) if spec_col is not None and spec_col.codes else check[5:-1]
        return column, f"unknown code (expected one of {codes})"
    if check.startswith("greater_than_or_equal_to("):
        return column, f"must be >= {check[len('greater_than_or_equal_to('):-1]}"
    return column, check


def _schema_problems(spec: TableSpec, df: pd.DataFrame) -> pd.DataFrame | None:
    try:
        _SCHEMAS[spec.name].validate(df, lazy=True)
        return None
    except pandera_pa.errors.SchemaErrors as e:
        fc = e.failure_cases
    fc = fc[fc["index"].notna()]
    if fc.empty:
        return None
    out = []
    for (check, column), grp in fc.groupby(["check", "column"], sort=False, dropna=False):
        col, reason = _reason(str(check), str(column))
        if col != column and col in df.columns:
            # A row rule reports every column of a failing row: keep the judged one.
            if column != col:
                continue
        rows = grp["index"].astype("int64").to_numpy()
        out.append(_problems(spec.name, rows, col, df[col].to_numpy()[rows], reason))
    # Row rules whose judged column is not itself listed in the failure cases.
    for check, grp in fc.groupby("check", sort=False):
        col, reason = _reason(str(check), "")
        if col and col in df.columns and col not in set(grp["column"]):
            rows = np.unique(grp["index"].astype("int64").to_numpy())
            out.append(_problems(spec.name, rows, col, df[col].to_numpy()[rows], reason))
    return pd.concat(out, ignore_index=True) if out else None


def _finish_types(spec: TableSpec, df: pd.DataFrame) -> pd.DataFrame:
    for c in spec.columns:
        if c.kind == "code":
            df[c.name] = pd.Categorical(df[c.name].astype(object).where(df[c.name].notna()),
                                        categories=list(c.codes or ()))
    return df


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


# --------------------------------------------------------------------------- the Dataset

@dataclass
class Dataset:
    """A validated, pseudonymised district: one typed DataFrame per contract table.

    Missing optional tables are empty frames with the right columns. ``quarantine``
    lists every problem found in rows that were set aside (empty when the input was
    clean), ``rejected`` holds those rows per table, ``rows_read`` how many rows each
    table had.
    """

    persons: pd.DataFrame
    places: pd.DataFrame
    incidents: pd.DataFrame
    incident_parties: pd.DataFrame
    households: pd.DataFrame
    household_members: pd.DataFrame
    organizations: pd.DataFrame
    mediations: pd.DataFrame
    person_flags: pd.DataFrame
    relations: pd.DataFrame
    # Contract 1.1 tables: empty for a 1.0 export.
    person_attributes: pd.DataFrame = field(default_factory=lambda: empty_table("person_attributes"))
    incident_notes: pd.DataFrame = field(default_factory=lambda: empty_table("incident_notes"))
    quarantine: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PROBLEM_COLUMNS))
    rejected: dict[str, pd.DataFrame] = field(default_factory=dict)
    rows_read: dict[str, int] = field(default_factory=dict)
    source: str | None = None
    # Derived structures (person key, indexes) cached by higher layers; not data.
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_frames(cls, *, errors: ErrorsMode = "raise", pseudonym_key: str | bytes | os.PathLike[str] | None = None,
                    pseudonymised: bool = False, **tables: pd.DataFrame) -> Dataset:
        """Build a Dataset from DataFrames named like the contract's tables, with full validation.

        ``pseudonymised=True`` says the personal-data columns already hold pseudonyms
        (frames taken from another Dataset) so they are not hashed twice.
        """
        unknown = set(tables) - set(TABLES)
        if unknown:
            raise TypeError(f"unknown table(s) {sorted(unknown)}; the contract's tables are {sorted(TABLES)}")
        return _build(dict(tables), errors=errors, key=None if pseudonymised else resolve_pseudonym_key(pseudonym_key),
                      source=None)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The contract tables by name."""
        return {name: getattr(self, name) for name in TABLES}

    def summary(self) -> pd.DataFrame:
        """Rows read, kept and quarantined per table, plus the span of incident times."""
        rows = []
        for name in TABLE_ORDER:
            kept = len(getattr(self, name))
            rows.append({"table": name, "read": self.rows_read.get(name, kept), "kept": kept,
                         "quarantined": len(self.rejected.get(name, ()))})
        return pd.DataFrame(rows)

    def append(self, *, errors: ErrorsMode = "raise", pseudonym_key: str | bytes | os.PathLike[str] | None = None,
               **tables: pd.DataFrame) -> Dataset:
        """A new Dataset: this one plus new rows, validated like a file (only the new rows
        are checked, against this dataset's ids and references)."""
        unknown = set(tables) - set(TABLES)
        if unknown:
            raise TypeError(f"unknown table(s) {sorted(unknown)}; the contract's tables are {sorted(TABLES)}")
        # Only tables with personal data need the key (new incidents alone do not).
        key = resolve_pseudonym_key(pseudonym_key) if any(PII_COLUMNS.get(t) for t in tables) else None
        out = _build(dict(tables), errors=errors, key=key, source=self.source, base=self)
        return out

    def cut(self, as_of) -> Dataset:
        """The dataset as it stood at ``as_of``, by the rules of :mod:`escalation_risk.known`.

        Incidents reported later vanish with their parties, notes and mediations; a
        party added later is not yet on its incident; an outcome recorded later is
        pending; a closing after ``as_of`` is blank (status open); people's hukou and
        employment are as they stood. Used to test point-in-time correctness.
        """
        return Dataset(**cut_tables(self.tables(), as_of), source=self.source)

    def write(self, path: str | os.PathLike, fmt: Literal["parquet", "csv"] = "parquet") -> Path:
        """Write every table as ``NAME.parquet`` or ``NAME.csv`` (pseudonyms, never raw PII).

        A marker file says the folder holds pseudonyms: :func:`load_dataset` reads it
        back without hashing them again (and without a key)."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        (out / PSEUDONYMISED_MARKER).write_text(
            "The personal-data columns of these tables hold keyed pseudonyms written by escalation_risk.\n")
        for name, df in self.tables().items():
            if fmt == "parquet":
                df.to_parquet(out / f"{name}.parquet", index=False)
            else:
                df.to_csv(out / f"{name}.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S")
        return out

    def fingerprint(self) -> str:
        """SHA-256 over the content of every table: identifies the training data in a manifest."""
        h = hashlib.sha256()
        for name in TABLE_ORDER:
            df = getattr(self, name)
            if name in CONTRACT_1_1 and not len(df) and not CONTRACT_1_1[name]:
                continue  # an absent 1.1 table: a 1.0 export keeps its fingerprint
            if name in CONTRACT_1_1:
                df = df.drop(columns=[c for c in CONTRACT_1_1[name] if df[c].isna().all()])
            h.update(name.encode())
            h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
        return h.hexdigest()

    def __repr__(self) -> str:
        counts = ", ".join(f"{n}={len(getattr(self, n))}" for n in TABLE_ORDER)
        q = f", quarantined={len(self.quarantine)}" if len(self.quarantine) else ""
        return f"Dataset({counts}{q})"


def _read_table(folder: Path, name: str) -> pd.DataFrame | None:
    pq, csv = folder / f"{name}.parquet", folder / f"{name}.csv"
    if pq.exists():
        try:
            return pd.read_parquet(pq)
        except Exception as e:  # pyarrow raises several types for a non-Parquet file
            raise _structural(name, "", f"{pq.name} is not a readable Parquet table ({type(e).__name__})") from None
    if csv.exists():
        try:
            return pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
        except UnicodeDecodeError as e:
            raise _structural(name, "", f"{csv.name} is not UTF-8 text (bad byte at offset {e.start})") from None
        except pd.errors.EmptyDataError:
            raise _structural(name, "", f"{csv.name} is empty: expected a header row") from None
        except pd.errors.ParserError as e:
            raise _structural(name, "", f"{csv.name} is not a CSV table ({str(e).splitlines()[0]})") from None
    return None


def load_dataset(path: str | os.PathLike, *, errors: ErrorsMode = "raise",
                 pseudonym_key: str | bytes | os.PathLike[str] | None = None) -> Dataset:
    """Read and validate a folder of contract tables (``NAME.csv`` or ``NAME.parquet``).

    ``errors="raise"`` raises :class:`DataValidationError` on any bad row;
    ``errors="quarantine"`` keeps the good rows and reports the bad ones in
    ``ds.quarantine``. Missing required tables or columns always raise.
    Personal identifiers are replaced by keyed hashes on load.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {folder}")
    # A folder written by Dataset.write already holds pseudonyms: hashing them again
    # would need the key for nothing and call every pseudonym a malformed id number.
    key = None if (folder / PSEUDONYMISED_MARKER).exists() else resolve_pseudonym_key(pseudonym_key)
    tables = {}
    for name in TABLES:
        df = _read_table(folder, name)
        if df is not None:
            tables[name] = df
    try:
        ds = _build(tables, errors=errors, key=key, source=str(folder))
    except DataValidationError as e:
        if e.problems["row"].isna().all():
            raise
        raise DataValidationError(_with_lines(e.problems, folder)[0]) from None
    _add_line_numbers(ds, folder)
    return ds


def _csv_lines(path: Path) -> np.ndarray:
    """The line of the file each data record starts on (the header is line 1); a quoted
    cell spanning lines makes this differ from row + 2."""
    starts = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        last = 0
        for i, rec in enumerate(reader):
            if i > 0 and rec:  # pandas skips blank lines too
                starts.append(last + 1)
            last = reader.line_num
    return np.asarray(starts, dtype=np.int64)


def _with_lines(problems: pd.DataFrame, folder: Path) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The problems with a ``line`` column (the CSV file's line number), and the line
    of every record of the CSV tables that had problems."""
    q = problems.copy()
    q["line"] = pd.array([pd.NA] * len(q), dtype="Int64")
    found: dict[str, np.ndarray] = {}
    for name in pd.unique(q["table"]) if len(q) else []:
        path = folder / f"{name}.csv"
        if (folder / f"{name}.parquet").exists() or not path.exists():
            continue
        lines = found[name] = _csv_lines(path)
        mine = (q["table"] == name) & q["row"].notna()
        rows = q.loc[mine, "row"].astype("int64").to_numpy()
        if len(lines):
            q.loc[mine, "line"] = pd.array(lines[np.minimum(rows, len(lines) - 1)], dtype="Int64")
    order = [*PROBLEM_COLUMNS[:2], "line", *PROBLEM_COLUMNS[2:]]
    return q[order + [c for c in q.columns if c not in order]], found


def _add_line_numbers(ds: Dataset, folder: Path) -> None:
    """Give every problem in a CSV table the file's line number, and every rejected row its ``_line``."""
    ds.quarantine, found = _with_lines(ds.quarantine, folder)
    for name, lines in found.items():
        if name in ds.rejected:
            r = ds.rejected[name]
            ds.rejected[name] = r.assign(_line=lines[r["_row"].to_numpy()])


def _require_columns(spec: TableSpec, columns) -> None:
    """Raise (whatever the error mode) when required columns are absent: nothing to keep."""
    absent = [c.name for c in spec.columns if c.required and c.name not in columns]
    if absent:
        raise DataValidationError(pd.concat(
            [_structural(spec.name, c, "required column is missing").problems for c in absent], ignore_index=True))


def _isin(values: pd.Series, keys: pd.Series) -> pd.Series:
    """values.isin(keys) for id strings through Arrow's hash set: pandas' Arrow-string
    isin builds a Python object per key, which dominated loading a large district."""
    mask = pc.is_in(pa.array(values.astype(object).where(values.notna(), None), type=pa.string()),
                    value_set=pa.array(pd.unique(keys.dropna().astype(object)), type=pa.string()))
    return pd.Series(mask.to_numpy(zero_copy_only=False), index=values.index).fillna(False).astype(bool)


# --------------------------------------------------------------------------- identifiers and plausibility

BAD_ID = ("not a valid id number (18 characters with a GB 11643 check digit, or the old 15-digit form); "
          "treated as missing for linkage")
BAD_PHONE = "not an 11-digit mobile number; treated as missing for linkage"
_IDENTIFIER_RULES = {"id_number": (normalise_id, is_valid_id, BAD_ID),
                     "phone": (normalise_phone, is_valid_mobile, BAD_PHONE)}


def _nullable(table: str, column: str) -> bool:
    """Whether a bad value in this column can be blanked with its row kept: not for
    required columns, ids and references (the row means nothing without them) nor for
    times (a blank ``closed_at`` would make a closed dispute open)."""
    spec = TABLES.get(table)
    if spec is None or column not in spec.column_names:
        return False
    c = spec.column(column)
    return not (c.required or c.unique or c.ref is not None or c.kind in ("id", "timestamp"))


def _check_identifiers(name: str, raw: pd.DataFrame) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """Malformed id numbers and phones, found before pseudonymisation: reported by rule
    and row (never the value) and set to missing, so they cannot link two people."""
    problems = []
    for column, (normalise, valid, reason) in _IDENTIFIER_RULES.items():
        if column not in PII_COLUMNS.get(name, ()) or column not in raw.columns:
            continue
        text = _as_str(raw[column])
        present = text.dropna()
        if present.empty:
            continue
        verdict = {v: valid(normalise(v)) for v in pd.unique(present)}
        bad = present.map(verdict).astype(bool).eq(False)
        if bad.any():
            rows = bad.index[bad.to_numpy()]
            problems.append(_problems(name, rows, column, [np.nan] * len(rows), reason))
            raw[column] = text.where(~text.index.isin(rows))
    return raw, problems


def _plausibility(name: str, df: pd.DataFrame) -> list[pd.DataFrame]:
    """Values of the right type that cannot be true: a birth year in the future."""
    if name != "persons" or "birth_year" not in df.columns:
        return []
    this_year = pd.Timestamp.now().year
    future = (df["birth_year"] > this_year).fillna(False).to_numpy(dtype=bool)
    if not future.any():
        return []
    rows = df.index[future]
    return [_problems(name, rows, "birth_year", df["birth_year"].to_numpy()[future],
                      f"in the future (after {this_year})")]


def _parse_table(name: str, raw: pd.DataFrame, key: bytes | None
                 ) -> tuple[pd.DataFrame, pd.DataFrame, list[pd.DataFrame]]:
    """Pseudonymise, parse and check the row rules of one table: (raw, parsed, problems)."""
    spec = TABLES[name]
    raw = raw.copy()
    # Checked on the raw values only: pseudonyms (key None) are not id numbers any more.
    raw, problems = _check_identifiers(name, raw) if key is not None else (raw, [])
    # Pseudonymise first: nothing below, error messages included, sees a raw identifier.
    for pii in PII_COLUMNS[name]:
        if pii in raw.columns and key is not None:
            raw[pii] = pseudonymise(raw[pii], key, pii)
    df = pd.DataFrame(index=raw.index)
    for c in spec.columns:
        col, prob = _parse_column(name, c, raw[c.name] if c.name in raw.columns else
                                  pd.Series(np.nan, index=raw.index, dtype=object))
        df[c.name] = col
        if prob is not None:
            problems.append(prob)
    for c in raw.columns:  # unknown columns are kept, ignored by the library
        if c not in df.columns:
            df[c] = raw[c]
    prob = _schema_problems(spec, df[spec.column_names])
    if prob is not None:
        problems.append(prob)
    problems.extend(_plausibility(name, df))
    return raw, df, problems


SMALL = 32  # up to this many rows, validate_rows checks record by record (no pandas/pandera overhead)


def validate_rows(name: str, rows: pd.DataFrame | list[dict], *,
                  pseudonym_key: str | bytes | os.PathLike[str] | None = None,
                  engine: Literal["auto", "frame", "records"] = "auto") -> pd.DataFrame:
    """Validate rows of one table on their own (types, codes, row rules; no references)
    and return them typed, or raise :class:`DataValidationError` as a file would.

    A handful of rows (a service's request) goes through a record-by-record engine
    that applies the same contract spec with the same messages in microseconds;
    larger frames through the vectorised one used for files. Tests hold the two to
    identical results.
    """
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}")
    spec = TABLES[name]
    records: list[dict] | None = rows if isinstance(rows, list) else None
    frame: pd.DataFrame | None = None if isinstance(rows, list) else rows.reset_index(drop=True)
    if frame is not None:
        columns = list(frame.columns)
    else:
        columns = list(dict.fromkeys(k for r in records or [] for k in r))
    _require_columns(spec, columns)
    key = resolve_pseudonym_key(pseudonym_key) if PII_COLUMNS[name] else None
    n = len(frame) if frame is not None else len(records or [])
    if engine == "records" or (engine == "auto" and n <= SMALL and not PII_COLUMNS[name]):
        if frame is not None:
            records = frame.to_dict("records")
        return _validate_records(spec, records or [], columns, key)
    if frame is None:
        frame = pd.DataFrame(records)
    _, df, problems = _parse_table(name, frame, key)
    if problems:
        raise DataValidationError(pd.concat(problems, ignore_index=True))
    return _finish_types(spec, df)


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
    if kind in ("id", "str", "text", "pii"):
        return str(v).strip()
    if kind == "code":
        return str(v).strip().lower()
    if kind == "timestamp":
        if isinstance(v, (pd.Timestamp, np.datetime64)) or hasattr(v, "isoformat") and not isinstance(v, str):
            ts = pd.Timestamp(v)
            return ts.tz_localize(None) if ts.tzinfo is not None else ts
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


def parse_records(name: str, records: list[dict], *, pseudonym_key: str | bytes | None = None
                  ) -> dict[str, list]:
    """:func:`validate_rows` for a handful of records, without building a DataFrame:
    column name -> parsed values (None when missing), or :class:`DataValidationError`."""
    spec = TABLES[name]
    columns = list(dict.fromkeys(k for r in records for k in r))
    _require_columns(spec, columns)
    key = resolve_pseudonym_key(pseudonym_key) if PII_COLUMNS[name] else None
    return _check_records(spec, records, key)[0]


def _check_records(spec: TableSpec, records: list[dict], key: bytes | None) -> tuple[dict[str, list], list[dict]]:
    """The checks of the record engine: (parsed columns, records as pseudonymised)."""
    records = list(records)  # identifiers are blanked below: never in the caller's list
    problems: list[tuple] = []
    parsed: dict[str, list] = {c.name: [] for c in spec.columns}
    for c in spec.columns:
        rule = _IDENTIFIER_RULES.get(c.name) if c.kind == "pii" and key is not None else None
        if rule is None:
            continue
        normalise, valid, reason = rule
        for i, r in enumerate(records):
            v = r.get(c.name)
            if not _missing(v) and not valid(normalise(str(v).strip())):
                problems.append((i, c.name, None, reason))
                records[i] = dict(r, **{c.name: None})
    for c in spec.columns:
        if c.kind == "pii" and key is not None:
            # Pseudonymise first, exactly as the file path does: nothing below sees the raw value.
            hashed = pseudonymise(pd.Series([r.get(c.name) for r in records], dtype=object), key, c.name)
            records = [dict(r, **{c.name: h}) for r, h in zip(records, hashed.tolist())]
    for i, rec in enumerate(records):
        for c in spec.columns:
            parsed[c.name].append(_record_value(spec.name, c, rec.get(c.name), i, problems))
    for c in spec.columns:
        vals = parsed[c.name]
        for i, v in enumerate(vals):
            if v is None:
                if c.required:
                    problems.append((i, c.name, None, "required value is missing"))
                continue
            if c.codes is not None and v not in c.codes:
                problems.append((i, c.name, v, f"unknown code (expected one of {', '.join(c.codes)})"))
            if c.min is not None and v < c.min:
                problems.append((i, c.name, v, f"must be >= {float(c.min)}"))
            if spec.name == "persons" and c.name == "birth_year" and v > pd.Timestamp.now().year:
                problems.append((i, c.name, v, f"in the future (after {pd.Timestamp.now().year})"))
        if c.unique:
            seen = set()
            for i, v in enumerate(vals):
                if v is not None and v in seen:
                    problems.append((i, c.name, v, "duplicate id"))
                seen.add(v)
    if spec.name == "incidents":
        offence, dispute = set(OFFENCE_CATEGORIES), set(DISPUTE_CATEGORIES)
        for i in range(len(records)):
            rep, occ = parsed["reported_at"][i], parsed["occurred_at"][i]
            if rep is not None and occ is not None and rep < occ:
                problems.append((i, "reported_at", rep, "must not be before occurred_at"))
            kind, cat = parsed["kind"][i], parsed["category"][i]
            if kind is not None and cat is not None and cat not in (offence if kind == "criminal_case" else dispute):
                problems.append((i, "category", cat,
                                 "an offence code only on criminal cases, a dispute code otherwise"))
    if spec.name == "person_attributes":
        for i in range(len(records)):
            attr, val = parsed["attribute"][i], parsed["value"][i]
            if attr in ATTRIBUTE_CODES and val is not None and val not in ATTRIBUTE_CODES[attr]:
                problems.append((i, "value", val, VALUE_RULE))
    if spec.name == "mediations":
        for i in range(len(records)):
            held, out = parsed["held_at"][i], parsed["outcome_at"][i]
            if held is not None and out is not None and out < held:
                problems.append((i, "outcome_at", out, OUTCOME_RULE))
    if problems:
        frames = [_problems(spec.name, [r], col, [v], reason) for r, col, v, reason in problems]
        raise DataValidationError(pd.concat(frames, ignore_index=True).sort_values("row", kind="stable"))
    return parsed, records


def _validate_records(spec: TableSpec, records: list[dict], columns: list[str], key: bytes | None) -> pd.DataFrame:
    """The record-by-record engine of :func:`validate_rows` (same spec, same messages)."""
    parsed, records = _check_records(spec, records, key)
    data = {}
    for c in spec.columns:
        vals = parsed[c.name]
        if c.kind == "code" and c.codes is not None:
            codes = c.codes
            data[c.name] = pd.Categorical.from_codes([-1 if v is None else codes.index(v) for v in vals],
                                                     dtype=_CODE_DTYPES[codes])
        elif c.kind == "timestamp":
            data[c.name] = np.array([np.datetime64("NaT") if v is None else v.to_datetime64() for v in vals],
                                    dtype="datetime64[ns]")
        elif c.kind == "int":
            data[c.name] = pd.array([None if v is None else int(v) for v in vals], dtype="Int64")
        elif c.kind == "float":
            data[c.name] = np.array([np.nan if v is None else v for v in vals], dtype="float64")
        elif c.kind == "bool":
            data[c.name] = pd.array(vals, dtype="boolean")
        else:
            data[c.name] = pd.array([np.nan if v is None else v for v in vals], dtype=STR_DTYPE)
    df = pd.DataFrame(data)
    for k in columns:  # unknown columns are kept, ignored by the library
        if k not in df.columns:
            df[k] = pd.Series([r.get(k) for r in records], dtype=object)
    return df


def _before_report(name: str, df: pd.DataFrame, incidents: pd.DataFrame, base: Dataset | None
                   ) -> tuple[str, pd.Series, str]:
    """Contract 1.1: a party's ``added_at`` and a note's ``recorded_at`` are not before the
    report of their incident (looked up among the new incidents, then the history)."""
    col = "added_at" if name == "incident_parties" else "recorded_at"
    inc = incidents if base is None else pd.concat([base.incidents, incidents])
    rep = pd.Series(inc["reported_at"].to_numpy(dtype="datetime64[ns]"),
                    index=pd.Index(inc["incident_id"].to_numpy(dtype=object)))
    rep = rep[~rep.index.duplicated(keep="last")]
    at = rep.reindex(df["incident_id"].to_numpy(dtype=object)).to_numpy(dtype="datetime64[ns]")
    when = df[col].to_numpy(dtype="datetime64[ns]")
    bad = ~np.isnat(when) & ~np.isnat(at) & (when < at)
    return col, pd.Series(bad, index=df.index), BEFORE_REPORT


def _build(tables: dict[str, pd.DataFrame], *, errors: ErrorsMode, key: bytes | None,
           source: str | None, base: Dataset | None = None) -> Dataset:
    """Validate ``tables``; with ``base``, they are new rows checked against it and appended."""
    if errors not in ("raise", "quarantine"):
        raise ValueError(f"errors must be 'raise' or 'quarantine', got {errors!r}")
    missing = [] if base is not None else [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise DataValidationError(pd.concat(
            [_structural(t, "", "required table is missing").problems for t in missing], ignore_index=True))

    parsed: dict[str, pd.DataFrame] = {}
    problems: list[pd.DataFrame] = []
    bad_rows: dict[str, np.ndarray] = {}
    rows_read: dict[str, int] = {}
    raw_frames: dict[str, pd.DataFrame] = {}
    for name in TABLE_ORDER:
        spec = TABLES[name]
        if name not in tables:
            parsed[name] = empty_table(name)
            rows_read[name] = 0
            continue
        raw = tables[name].reset_index(drop=True)
        rows_read[name] = len(raw)
        _require_columns(spec, raw.columns)
        if name == "persons" and key is not None:
            # Record-linkage keys come from the raw identifiers, hashed with the same key.
            raw = raw.assign(**normalize.linkage_keys(raw, key))
        raw, df, probs = _parse_table(name, raw, key)
        problems.extend(probs)
        parsed[name] = df
        raw_frames[name] = raw

    allp = pd.concat(problems, ignore_index=True) if problems else pd.DataFrame(columns=PROBLEM_COLUMNS)
    soft = allp.apply(lambda p: _nullable(p["table"], p["column"]), axis=1).astype(bool) if len(allp) else \
        pd.Series(False, index=allp.index)
    if errors == "quarantine":
        # A bad value the record can do without is blanked and the row kept, so one
        # typo in a person's gender does not take their disputes and ties with it.
        for (name, col), grp in allp[soft].groupby(["table", "column"], sort=False):
            rows = grp["row"].astype("int64").to_numpy()
            drop = np.zeros(len(parsed[name]), dtype=bool)
            drop[rows] = True
            parsed[name][col] = parsed[name][col].mask(drop)
    else:
        soft[:] = False
    # References, in dependency order: a row pointing at a rejected row is rejected too.
    for name in TABLE_ORDER:
        df = parsed[name]
        bad = np.zeros(len(df), dtype=bool)
        mine = allp[(allp["table"] == name) & ~soft]
        if len(mine):
            bad[mine["row"].astype("int64").to_numpy()] = True
        refs = []
        for c in TABLES[name].columns:
            if c.ref is None:
                continue
            rt, rc = c.ref
            ok_keys = parsed[rt][rc][~bad_rows.get(rt, np.zeros(len(parsed[rt]), bool))] if rt != name else \
                df[rc][~bad]
            if base is not None:
                ok_keys = pd.concat([getattr(base, rt)[rc], ok_keys])
            refs.append((c.name, df[c.name].notna() & ~_isin(df[c.name], ok_keys), f"refers to a missing {rt[:-1]}"))
        if name == "incident_parties":
            for ptype, rt, rc in (("person", "persons", "person_id"), ("organization", "organizations", "org_id")):
                ok_keys = parsed[rt][rc][~bad_rows.get(rt, np.zeros(len(parsed[rt]), bool))]
                if base is not None:
                    ok_keys = pd.concat([getattr(base, rt)[rc], ok_keys])
                miss = (df["party_type"] == ptype) & df["party_id"].notna() & ~_isin(df["party_id"], ok_keys)
                refs.append(("party_id", miss, f"refers to a missing {rt[:-1]} (party_type {ptype})"))
        if name in ("incident_parties", "incident_notes"):
            refs.append(_before_report(name, df, parsed["incidents"], base))
        spec_key = TABLES[name].key
        if base is not None and spec_key is not None and len(df):
            refs.append((spec_key, _isin(df[spec_key], getattr(base, name)[spec_key]),
                         "duplicate id (already in the history)"))
        for col, miss, reason in refs:
            miss = miss.to_numpy(dtype=bool)
            if miss.any():
                p = _problems(name, np.flatnonzero(miss), col, df[col].to_numpy()[miss], reason)
                allp = pd.concat([allp, p], ignore_index=True)
                bad |= miss
        bad_rows[name] = bad

    allp = allp.sort_values(["table", "row"], key=lambda s: s.map(TABLE_ORDER.index) if s.name == "table" else s,
                            kind="stable").reset_index(drop=True)
    if len(allp) and errors == "raise":
        raise DataValidationError(allp)
    allp["action"] = [SET_ASIDE if bad_rows.get(t, np.zeros(0, bool))[int(r)] else NULLED
                      for t, r in zip(allp["table"], allp["row"])] if len(allp) else pd.Series(dtype=object)

    out: dict[str, pd.DataFrame] = {}
    rejected: dict[str, pd.DataFrame] = {}
    for name in TABLE_ORDER:
        df = parsed[name]
        bad = bad_rows.get(name, np.zeros(len(df), bool))
        if bad.any():
            # Ids, codes, times and numbers only: free text and personal data never leave.
            keep = [c.name for c in TABLES[name].columns
                    if c.name not in HIDDEN_COLUMNS[name] and c.name in raw_frames[name].columns]
            rows = raw_frames[name].loc[bad, keep].copy()
            for c in rows.columns:  # a bad code can be anything someone typed
                if not pd.api.types.is_numeric_dtype(rows[c]) and not pd.api.types.is_datetime64_any_dtype(rows[c]):
                    rows[c] = rows[c].map(lambda v: mask_identifiers(v) if isinstance(v, str) else v)
            rejected[name] = rows.assign(_row=np.flatnonzero(bad))
            df = df[~bad]
            # Related-incident links to a rejected incident are dropped from the kept rows
            # only through the rejection above; nothing is silently rewritten.
        out[name] = _finish_types(TABLES[name], df.reset_index(drop=True))
        if base is not None:
            out[name] = pd.concat([getattr(base, name), out[name]], ignore_index=True) if len(out[name]) \
                else getattr(base, name)
    if len(allp):
        log.warning("quarantined %d row(s) in %d table(s); %d value(s) set to missing in kept rows",
                    sum(int(b.sum()) for b in bad_rows.values()), len(rejected), int((allp["action"] == NULLED).sum()))
    return Dataset(**out, quarantine=allp, rejected=rejected, rows_read=rows_read, source=source)
