"""The contract's rules on one table's rows: the pandera schema, the plausibility checks,
and the record-by-record engine that applies the same rules to a handful of rows."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import partial
from typing import Literal

import numpy as np
import pandas as pd

from .. import clock
from .._pandera_import import import_pandera
from ..contract import ATTRIBUTE_CODES, DISPUTE_CATEGORIES, OFFENCE_CATEGORIES, PII_COLUMNS, TABLES, TableSpec
from ..pseudonym_keys import resolve_pseudonym_key
from .parsing import STR_DTYPE, _finish_types, _missing, _parse_column, _record_value, record_columns
from .problems import DataValidationError, _problems, _require_columns
from .pseudonyms import _IDENTIFIER_RULES, _check_identifiers, pseudonymise

import_pandera()  # before pandera's first import (this module is its only importer): see _pandera_import
import pandera.pandas as pandera_pa  # noqa: E402


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



def _nullable(table: str, column: str) -> bool:
    """Whether a bad value in this column can be blanked with its row kept: not for
    required columns, ids and references (the row means nothing without them) nor for
    times (a blank ``closed_at`` would make a closed dispute open)."""
    spec = TABLES.get(table)
    if spec is None or column not in spec.column_names:
        return False
    c = spec.column(column)
    return not (c.required or c.unique or c.ref is not None or c.kind in ("id", "timestamp"))



def _plausibility(name: str, df: pd.DataFrame) -> list[pd.DataFrame]:
    """Values of the right type that cannot be true: a birth year in the future."""
    if name != "persons" or "birth_year" not in df.columns:
        return []
    this_year = clock.now().year
    future = (df["birth_year"] > this_year).fillna(False).to_numpy(dtype=bool)
    if not future.any():
        return []
    rows = df.index[future]
    return [_problems(name, rows, "birth_year", df["birth_year"].to_numpy()[future],
                      f"in the future (after {this_year})")]


def _parse_table(name: str, raw: pd.DataFrame, key: bytes | None, *,
                 normalised: dict[str, pd.Series] | None = None,
                 pseudonyms: Mapping[str, Callable[[], pd.Series]] | None = None,
                 later: dict[str, Callable[[], pd.Series]] | None = None,
                 ) -> tuple[pd.DataFrame, pd.DataFrame, list[pd.DataFrame]]:
    """Pseudonymise, parse and check the row rules of one table: (raw, parsed, problems).
    ``normalised``: personal-data columns already normalised from the raw values (names).
    ``pseudonyms``: columns whose pseudonyms another process is making from these raw
    values. Pseudonyms are made value by value, so those of the raw values are the checked
    values' own, but where the identifier check set a value to missing: blanked there.
    They are read here, when the others are done; or, with ``later``, not waited for: the
    column is parsed blank (no rule of the contract reads a personal-data column's value)
    and ``later[column]`` gives its parsed values, to be set before anything reads them."""
    spec = TABLES[name]
    raw = raw.copy()
    given = {c: f for c, f in (pseudonyms or {}).items() if c in raw.columns}
    if later is not None and any(c not in PII_COLUMNS[name] for c in given):
        raise ValueError("only personal-data columns are parsed before their pseudonyms are made")
    # Checked on the raw values only: pseudonyms (key None) are not id numbers any more.
    raw, problems = _check_identifiers(name, raw) if key is not None else (raw, [])
    # Pseudonymise first: nothing below, error messages included, sees a raw identifier.
    for pii in PII_COLUMNS[name]:
        if pii in raw.columns and key is not None and pii not in given:
            raw[pii] = pseudonymise(raw[pii], key, pii, normalised=(normalised or {}).get(pii))
    for pii, made in given.items():
        if pii in _IDENTIFIER_RULES:
            made = partial(_kept_where, made, raw[pii].notna().to_numpy())
        if later is None:
            raw[pii] = made()
        else:
            later[pii] = made
            raw[pii] = pd.Series(np.nan, index=raw.index, dtype=STR_DTYPE)
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


def _kept_where(made: Callable[[], pd.Series], kept: np.ndarray) -> pd.Series:
    """Pseudonyms made from raw values, blanked where the identifier check set the value to missing."""
    out = made()
    return out.where(kept) if not kept.all() else out


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
        columns = record_columns(records or [])
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



def parse_records(name: str, records: list[dict], *, pseudonym_key: str | bytes | None = None
                  ) -> dict[str, list]:
    """:func:`validate_rows` for a handful of records, without building a DataFrame:
    column name -> parsed values (None when missing), or :class:`DataValidationError`."""
    spec = TABLES[name]
    columns = record_columns(records)
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
            if spec.name == "persons" and c.name == "birth_year" and v > clock.now().year:
                problems.append((i, c.name, v, f"in the future (after {clock.now().year})"))
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

