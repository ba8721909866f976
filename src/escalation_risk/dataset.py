"""Read, validate, quarantine and pseudonymise a district's tables.

``load_dataset`` reads a folder of ``NAME.csv`` / ``NAME.parquet`` files in the shape
of the data contract (:mod:`escalation_risk.contract`); ``Dataset.from_frames`` does
the same for DataFrames a notebook or a service already holds. Both go through one
pipeline:

1. structure: required tables and columns present, files readable as UTF-8 tables
   (problems here always raise: there is nothing sensible to keep);
2. pseudonymisation of ``name``, ``id_number`` and ``phone`` with a keyed hash
   (HMAC-SHA256), *before* anything else looks at the rows, so that no raw
   identifier can reach a DataFrame, a log line or an error message;
3. parsing of every column into its contract type (unparseable values are problems);
4. the contract's row rules, declared once as a pandera schema per table (codes,
   non-null, unique ids, ranges, ``reported_at >= occurred_at``, offence categories
   only on criminal cases);
5. references between tables, checked in dependency order so that the dependants of
   a rejected row are rejected with it.

With ``errors="raise"`` any problem raises :class:`DataValidationError`; with
``errors="quarantine"`` good rows are kept and every bad row goes to
``ds.quarantine`` (one line per problem: table, row, column, value, reason) and
``ds.rejected[table]`` (the row itself, pseudonymised). For each table, kept rows
plus rejected rows equal the rows read.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pandera.pandas as pandera_pa
import pyarrow as pa
import pyarrow.compute as pc

from .contract import (
    DISPUTE_CATEGORIES,
    OFFENCE_CATEGORIES,
    PII_COLUMNS,
    REQUIRED_TABLES,
    TABLE_ORDER,
    TABLES,
    Column,
    TableSpec,
)

log = logging.getLogger(__name__)

# Strings keep NaN as their missing value so numpy-style masks keep working.
STR_DTYPE = pd.StringDtype(na_value=np.nan)
DEV_PSEUDONYM_KEY = "escalation-risk-development-key"
KEY_ENV = "ESCALATION_RISK_PSEUDONYM_KEY"
MAX_LISTED = 10

ErrorsMode = Literal["raise", "quarantine"]


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
    value = f" (value {p.value})" if p.value else ""
    return f"{where}: {p.reason}{value}"


PROBLEM_COLUMNS = ["table", "row", "column", "value", "reason"]


def _problems(table: str, rows: Iterable[int], column: str, values: Iterable, reason: str) -> pd.DataFrame:
    rows = list(rows)
    pii = column in PII_COLUMNS.get(table, ())
    shown = ["" if pii or pd.isna(v) else _short(v) for v in values] if rows else []
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

def resolve_pseudonym_key(key: str | bytes | None) -> bytes:
    """The HMAC key: the argument, else ``$ESCALATION_RISK_PSEUDONYM_KEY``, else the dev key."""
    if key is None:
        key = os.environ.get(KEY_ENV)
    if key is None:
        warnings.warn(f"no pseudonym key given and {KEY_ENV} is not set: using the public development "
                      "key. Pseudonyms made with it are not secret; set a key in production.",
                      UserWarning, stacklevel=3)
        key = DEV_PSEUDONYM_KEY
    return key.encode() if isinstance(key, str) else key


def _normalise_pii(column: str, s: pd.Series) -> pd.Series:
    s = _as_str(s)
    if column == "phone":
        s = s.str.replace(r"\D", "", regex=True).str[-11:]
    elif column == "id_number":
        s = s.str.upper()
    return s.where(s != "")


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
            out = raw.dt.tz_localize(None) if getattr(raw.dt, "tz", None) is not None else raw
            return out.astype("datetime64[ns]"), None
        text = _as_str(raw)
        out = pd.to_datetime(text, format="ISO8601", errors="coerce")
        if getattr(out.dt, "tz", None) is not None:
            out = out.dt.tz_localize(None)
        bad = text.notna() & out.isna()
        return out.astype("datetime64[ns]"), _bad(table, col, raw, bad, "not an ISO 8601 timestamp")
    if kind in ("int", "float"):
        if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
            out = raw.astype("float64")
            bad = pd.Series(False, index=raw.index)
        else:
            text = _as_str(raw)
            out = pd.to_numeric(text, errors="coerce").astype("float64")
            bad = text.notna() & out.isna()
        probs = _bad(table, col, raw, bad, "not a number")
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


def _bad(table: str, col: Column, raw: pd.Series, bad: pd.Series, reason: str) -> pd.DataFrame | None:
    if not bad.any():
        return None
    return _problems(table, raw.index[bad.to_numpy()], col.name, raw[bad.to_numpy()], reason)


# --------------------------------------------------------------------------- the schema

def _row_rules(spec: TableSpec) -> list[pandera_pa.Check]:
    """Rules that span columns of one row, named 'column: rule' for reporting."""
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
                                        categories=list(c.codes))
    return df


def empty_table(name: str) -> pd.DataFrame:
    """An empty frame with the table's contract columns and dtypes."""
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
    quarantine: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PROBLEM_COLUMNS))
    rejected: dict[str, pd.DataFrame] = field(default_factory=dict)
    rows_read: dict[str, int] = field(default_factory=dict)
    source: str | None = None
    # Derived structures (person key, indexes) cached by higher layers; not data.
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_frames(cls, *, errors: ErrorsMode = "raise", pseudonym_key: str | bytes | None = None,
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

    def append(self, *, errors: ErrorsMode = "raise", pseudonym_key: str | bytes | None = None,
               **tables: pd.DataFrame) -> Dataset:
        """A new Dataset: this one plus new rows, validated like a file (only the new rows
        are checked, against this dataset's ids and references)."""
        unknown = set(tables) - set(TABLES)
        if unknown:
            raise TypeError(f"unknown table(s) {sorted(unknown)}; the contract's tables are {sorted(TABLES)}")
        out = _build(dict(tables), errors=errors, key=resolve_pseudonym_key(pseudonym_key), source=self.source,
                     base=self)
        return out

    def cut(self, as_of) -> Dataset:
        """The dataset as it stood at ``as_of``: only records available by then.

        Incidents reported later vanish (with their parties and mediations); a
        closing after ``as_of`` is not yet known, so ``closed_at`` is blanked and
        ``status`` reset to open. Used to test point-in-time correctness.
        """
        t = pd.Timestamp(as_of)
        inc = self.incidents[self.incidents["reported_at"] <= t].copy()
        later = inc["closed_at"] > t
        inc.loc[later, "closed_at"] = pd.NaT
        inc.loc[later, "status"] = "open"
        inc["related_incident_id"] = inc["related_incident_id"].where(
            inc["related_incident_id"].isin(inc["incident_id"]))
        keep = set(inc["incident_id"])
        hm = self.household_members
        hm = hm[hm["start_date"].isna() | (hm["start_date"] <= t)].copy()
        hm.loc[hm["end_date"] > t, "end_date"] = pd.NaT
        rel = self.relations
        out = Dataset(
            persons=self.persons, places=self.places, households=self.households,
            organizations=self.organizations, household_members=hm.reset_index(drop=True),
            incidents=inc.reset_index(drop=True),
            incident_parties=self.incident_parties[self.incident_parties["incident_id"].isin(keep)]
            .reset_index(drop=True),
            mediations=self.mediations[self.mediations["incident_id"].isin(keep)
                                       & (self.mediations["held_at"] <= t)].reset_index(drop=True),
            person_flags=self.person_flags[self.person_flags["recorded_at"] <= t].reset_index(drop=True),
            relations=rel[rel["since"].isna() | (rel["since"] <= t)].reset_index(drop=True),
            source=self.source,
        )
        return out

    def write(self, path: str | os.PathLike, fmt: Literal["parquet", "csv"] = "parquet") -> Path:
        """Write every table as ``NAME.parquet`` or ``NAME.csv`` (pseudonyms, never raw PII)."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
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
                 pseudonym_key: str | bytes | None = None) -> Dataset:
    """Read and validate a folder of contract tables (``NAME.csv`` or ``NAME.parquet``).

    ``errors="raise"`` raises :class:`DataValidationError` on any bad row;
    ``errors="quarantine"`` keeps the good rows and reports the bad ones in
    ``ds.quarantine``. Missing required tables or columns always raise.
    Personal identifiers are replaced by keyed hashes on load.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {folder}")
    key = resolve_pseudonym_key(pseudonym_key)
    tables = {}
    for name in TABLES:
        df = _read_table(folder, name)
        if df is not None:
            tables[name] = df
    return _build(tables, errors=errors, key=key, source=str(folder))


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


def _parse_table(name: str, raw: pd.DataFrame, key: bytes | None
                 ) -> tuple[pd.DataFrame, pd.DataFrame, list[pd.DataFrame]]:
    """Pseudonymise, parse and check the row rules of one table: (raw, parsed, problems)."""
    spec = TABLES[name]
    raw = raw.copy()
    # Pseudonymise first: nothing below, error messages included, sees a raw identifier.
    for c in PII_COLUMNS[name]:
        if c in raw.columns and key is not None:
            raw[c] = pseudonymise(raw[c], key, c)
    df = pd.DataFrame(index=raw.index)
    problems = []
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
    return raw, df, problems


SMALL = 32  # up to this many rows, validate_rows checks record by record (no pandas/pandera overhead)


def validate_rows(name: str, rows: pd.DataFrame | list[dict], *, pseudonym_key: str | bytes | None = None,
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
    records = rows if isinstance(rows, list) else None
    if records is None:
        rows = rows.reset_index(drop=True)
        columns = list(rows.columns)
    else:
        columns = list(dict.fromkeys(k for r in records for k in r))
    _require_columns(spec, columns)
    key = resolve_pseudonym_key(pseudonym_key) if PII_COLUMNS[name] else None
    n = len(records) if records is not None else len(rows)
    if engine == "records" or (engine == "auto" and n <= SMALL and not PII_COLUMNS[name]):
        if records is None:
            records = rows.to_dict("records")
        return _validate_records(spec, records, columns, key)
    if records is not None:
        rows = pd.DataFrame(records)
    _, df, problems = _parse_table(name, rows, key)
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
        try:
            ts = pd.to_datetime(str(v).strip(), format="ISO8601")
        except (ValueError, TypeError, OverflowError):
            problems.append((row, col.name, v, "not an ISO 8601 timestamp"))
            return None
        return ts.tz_localize(None) if ts.tzinfo is not None else ts
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


def _validate_records(spec: TableSpec, records: list[dict], columns: list[str], key: bytes | None) -> pd.DataFrame:
    """The record-by-record engine of :func:`validate_rows` (same spec, same messages)."""
    problems: list[tuple] = []
    parsed = {c.name: [] for c in spec.columns}
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
    if problems:
        frames = [_problems(spec.name, [r], col, [v], reason) for r, col, v, reason in problems]
        raise DataValidationError(pd.concat(frames, ignore_index=True).sort_values("row", kind="stable"))
    data = {}
    for c in spec.columns:
        vals = parsed[c.name]
        if c.kind == "code":
            data[c.name] = pd.Categorical.from_codes([-1 if v is None else c.codes.index(v) for v in vals],
                                                     dtype=_CODE_DTYPES[c.codes])
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
        raw, df, probs = _parse_table(name, raw, key)
        problems.extend(probs)
        parsed[name] = df
        raw_frames[name] = raw

    # References, in dependency order: a row pointing at a rejected row is rejected too.
    allp = pd.concat(problems, ignore_index=True) if problems else pd.DataFrame(columns=PROBLEM_COLUMNS)
    for name in TABLE_ORDER:
        df = parsed[name]
        bad = np.zeros(len(df), dtype=bool)
        mine = allp[allp["table"] == name]
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

    out: dict[str, pd.DataFrame] = {}
    rejected: dict[str, pd.DataFrame] = {}
    for name in TABLE_ORDER:
        df = parsed[name]
        bad = bad_rows.get(name, np.zeros(len(df), bool))
        if bad.any():
            rejected[name] = raw_frames[name][bad].assign(_row=np.flatnonzero(bad))
            df = df[~bad]
            # Related-incident links to a rejected incident are dropped from the kept rows
            # only through the rejection above; nothing is silently rewritten.
        out[name] = _finish_types(TABLES[name], df.reset_index(drop=True))
        if base is not None:
            out[name] = pd.concat([getattr(base, name), out[name]], ignore_index=True) if len(out[name]) \
                else getattr(base, name)
    if len(allp):
        log.warning("quarantined %d row(s) in %d table(s)", sum(int(b.sum()) for b in bad_rows.values()),
                    len(rejected))
    return Dataset(**out, quarantine=allp, rejected=rejected, rows_read=rows_read, source=source)
