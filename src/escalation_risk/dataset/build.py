"""One district's tables validated together: each table's rows, then the references between
tables in dependency order, then quarantine (a bad row set aside, a bad optional value blanked)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import normalize
from ..contract import PII_COLUMNS, REQUIRED_TABLES, TABLE_ORDER, TABLES
from ..forks import Forked, worth_forking
from ..pseudonym_keys import key_fingerprint
from .parsing import _as_str, _finish_types, arrow_strings, as_records, empty_table, read_alike, record_columns
from .problems import (
    HIDDEN_COLUMNS,
    NULLED,
    PROBLEM_COLUMNS,
    SET_ASIDE,
    DataValidationError,
    _problems,
    _require_columns,
    _structural,
    rejected_value,
)
from .pseudonyms import pseudonymise
from .validation import BEFORE_REPORT, SMALL, _nullable, _parse_table, _validate_records

if TYPE_CHECKING:
    from .frame import Dataset

log = logging.getLogger("escalation_risk.dataset")

ErrorsMode = Literal["raise", "quarantine"]


def _isin(values: pd.Series, *keys: pd.Series) -> pd.Series:
    """values.isin(keys) for id strings (``keys`` in one or more parts: the history's and the
    new rows', not joined) through Arrow's hash set: pandas' Arrow-string isin builds a Python
    object per key, which dominated loading a large district. A few values against a few
    keys (an add checked against its context) go through a set."""
    keys = tuple(k for k in keys if len(k))
    if len(values) <= SMALL and sum(len(k) for k in keys) <= 64 * SMALL:
        keyset = {k for part in keys for k in part.tolist() if isinstance(k, str)}
        return pd.Series([isinstance(v, str) and v in keyset for v in values.tolist()], index=values.index,
                         dtype=bool)
    if not keys:
        return pd.Series(False, index=values.index, dtype=bool)
    value_set = arrow_strings(keys[0]) if len(keys) == 1 else \
        pa.concat_arrays([arrow_strings(k) for k in keys])
    mask = pc.is_in(arrow_strings(values), value_set=value_set, skip_nulls=True)
    return pd.Series(mask.to_numpy(zero_copy_only=False), index=values.index).fillna(False).astype(bool)



def as_table(rows: Mapping | Iterable[Mapping] | pd.DataFrame, name: str) -> pd.DataFrame | list[dict]:
    """A service's rows of table ``name`` as :meth:`Dataset.new_rows` takes them: a frame as
    given; records (:func:`.as_records`) kept as records when they are few and a frame would
    read them alike (:func:`.read_alike`: the record engine then reads them without one),
    else their frame, as ``pd.DataFrame(records)``. The one rule: :func:`build_parts` reads
    a list of records by it."""
    if isinstance(rows, pd.DataFrame):
        return rows
    records = as_records(rows, name)
    spec = TABLES.get(name)
    if spec is not None and len(records) <= SMALL and read_alike(spec, records):
        return records
    return pd.DataFrame(records)


def _pseudonyms(raw: pd.DataFrame, key: bytes, names: pd.Series | None) -> dict[str, pd.Series]:
    """The pseudonyms of every identifier column of ``raw`` (``names``: its names normalised)."""
    return {c: pseudonymise(raw[c], key, c, normalised=names if c == "name" else None) for c in raw.columns}


def _column(job: Forked[dict[str, pd.Series]], column: str) -> pd.Series:
    """One column of a forked job's pseudonyms, handed over (not kept in the job's result)."""
    return job.result().pop(column)


def _one_chunk(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with each Arrow-backed column in one chunk: taking a few rows of a chunked
    column concatenates its chunks first, so reading an old dispute's rows in
    ``Scorer.add`` cost the district (4 ms at 100,000 people for 3 rows, 0.3 ms in one chunk)."""
    for c in df.columns:
        arr = df[c].array
        chunked = getattr(arr, "_pa_array", None)
        if isinstance(chunked, pa.ChunkedArray) and chunked.num_chunks > 1:
            df[c] = pd.Series(type(arr)(pa.chunked_array([chunked.combine_chunks()]), dtype=arr.dtype),
                              index=df.index, name=c)
    return df


def _shown_columns(name: str, columns: pd.Index) -> list[str]:
    """The contract columns of ``name`` a rejected row keeps (ids, codes, times and
    numbers: free text and personal data never leave), in the contract's order."""
    return [c.name for c in TABLES[name].columns if c.name not in HIDDEN_COLUMNS[name] and c.name in columns]


def _ref_keys(new: pd.Series, gone: np.ndarray | None, base: Dataset | None, table: str, column: str
              ) -> list[pd.Series]:
    """The keys a reference to ``table.column`` may name: ``base``'s (the history), then the
    new rows' not set aside (``gone``), in parts: joining them was most of an add's checks."""
    parts = [new if gone is None or not gone.any() else new[~gone]]
    return parts if base is None else [getattr(base, table)[column], *parts]


def _shown_rows(name: str, raw: pd.DataFrame | list[dict]) -> pd.DataFrame:
    """The rows of ``raw`` in the columns a rejected row's report may show (never personal data)."""
    if isinstance(raw, list):
        raw = pd.DataFrame(raw, columns=record_columns(raw))
    return raw[_shown_columns(name, raw.columns)]


def _missing_refs(values: pd.Series, keys: list[pd.Series], rows: pd.Series | None = None) -> pd.Series:
    """The rows (of ``rows``, when given) whose reference is given and names none of ``keys``."""
    miss = values.notna() & ~_isin(values, *keys)
    return miss if rows is None else rows & miss


def _before_report(col: str, df: pd.DataFrame, incidents: pd.DataFrame, base: Dataset | None) -> pd.Series:
    """Contract 1.1: a party's ``added_at`` and a note's ``recorded_at`` (``col``) are not
    before the report of their incident (looked up among the new incidents, then the history)."""
    # The two columns read, part by part (the whole tables joined were an add's fixed cost).
    parts = [incidents] if base is None else [base.incidents, incidents]
    ids = [arrow_strings(p["incident_id"]) for p in parts]
    reported = np.concatenate([p["reported_at"].to_numpy(dtype="datetime64[ns]") for p in parts])
    # Each row's incident: the last row with its id (a missing id is one more id), looked up
    # through Arrow as the first match among the ids read backwards. (A pandas index of the
    # ids built a Python object per id, half a gigabyte at a million people.)
    n = len(reported)
    joined = ids[0] if len(ids) == 1 else pa.concat_arrays(ids)
    backwards = joined.take(pa.array(np.arange(n - 1, -1, -1, dtype=np.int64)))
    hit = pc.index_in(arrow_strings(df["incident_id"]), value_set=backwards, skip_nulls=False)
    hit = np.asarray(hit.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    found = hit >= 0
    at = np.full(len(df), np.datetime64("NaT"), dtype="datetime64[ns]")
    at[found] = reported[n - 1 - hit[found]]
    when = df[col].to_numpy(dtype="datetime64[ns]")
    bad = ~np.isnat(when) & ~np.isnat(at) & (when < at)
    return pd.Series(bad, index=df.index)


def build_parts(tables: Mapping[str, pd.DataFrame | list[dict] | Callable[[], pd.DataFrame | None]], *,
                errors: ErrorsMode, key: bytes | None, source: str | None, base: Dataset | None = None,
                joined: bool = True) -> dict:
    """Validate ``tables``; with ``base``, they are new rows checked against it and appended
    (``joined`` False: the new rows only, not joined to ``base``'s, as ``Scorer.add`` keeps them).
    A table may be given as a function reading it (None: absent), called when its turn
    comes, so only one raw table is held at a time; or as a list of records (a service's
    rows, read as ``pd.DataFrame(records)`` would read them).
    Returns the keyword arguments of the :class:`Dataset` they make."""
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
    raw_frames: dict[str, pd.DataFrame | Callable[[], pd.DataFrame]] = {}
    typed: set[str] = set()  # frames already in their final types (nothing to finish)
    link_keys: Forked[pd.DataFrame] | None = None
    name_job: Forked[dict[str, pd.Series]] | None = None
    later: dict[str, dict[str, Callable[[], pd.Series]]] = {}  # table -> column -> its pseudonyms
    try:
        for name in TABLE_ORDER:
            spec = TABLES[name]
            given = tables.get(name)
            read = given() if callable(given) else given
            if read is None:  # not given, or a table file that vanished since the folder was listed
                parsed[name] = empty_table(name)
                rows_read[name] = 0
                typed.add(name)
                continue
            if isinstance(read, list):  # kept as records or made their frame by the one rule
                read = as_table(read, name)
            records: list[dict] | None = None
            if isinstance(read, list):
                # Records as given (the record engine reads them as it would read their frame):
                # the frame is then made only if something needs it (the linkage keys, a problem).
                records = read
                cols = record_columns(read)
                raw = pd.DataFrame(read, columns=cols) if name == "persons" and key is not None else None
            else:
                raw = read.reset_index(drop=True)
                cols = list(raw.columns)
            rows_read[name] = len(read)
            del read, given
            _require_columns(spec, cols)
            normalised: dict[str, pd.Series] = {}
            pseudonyms: dict[str, Callable[[], pd.Series]] = {}
            if name == "persons" and key is not None:
                assert raw is not None
                # Record-linkage keys come from the raw identifiers, hashed with the same key;
                # the names are normalised once, for the keys and for their pseudonyms.
                if "name" in raw.columns:
                    normalised["name"] = normalize.normalise_name(raw["name"])
                # Hashing every identifier is a third of a large district's load: done by a
                # forked child while this process parses the tables; joined once they are parsed,
                # as the last columns of the persons table (where they always were).
                fork = worth_forking(len(raw))
                link_keys = Forked(partial(normalize.linkage_keys, raw, key, names=normalised.get("name")),
                                   fork=fork)
                made = [c for c in PII_COLUMNS[name] if c in raw.columns]
                if fork and made:
                    # Every identifier's pseudonyms too (from the same raw values, by another
                    # child), while this process checks the id numbers and phones and parses
                    # the tables; an identifier the check rejects has its pseudonym blanked.
                    name_job = Forked(partial(_pseudonyms, raw[made], key, normalised.get("name")))
                    pseudonyms.update({c: partial(_column, name_job, c) for c in made})
            if rows_read[name] <= SMALL:
                # A service's few rows: the record engine (same spec, same checks and pseudonyms,
                # held equal by tests, without the frame engine's ~25 ms of fixed cost on a new
                # person); on any problem the frame engine names them all.
                rows = records if records is not None else raw
                assert rows is not None
                try:
                    df = _validate_records(spec, rows if isinstance(rows, list) else rows.to_dict("records"), cols, key)
                except DataValidationError:
                    pass
                else:
                    if isinstance(rows, pd.DataFrame):  # columns outside the contract as given (records: none)
                        for c in df.columns.difference(spec.column_names, sort=False):
                            df[c] = rows[c].array
                    parsed[name] = df
                    # Kept for a row a later check sets aside: never personal data. A frame is
                    # cut now (its raw identifiers freed); records only if a row is set aside.
                    raw_frames[name] = partial(_shown_rows, name, rows) if isinstance(rows, list) \
                        else _shown_rows(name, rows)
                    typed.add(name)
                    continue
            if raw is None:
                raw = pd.DataFrame(records, columns=cols)
            # The forked pseudonyms are set once every table is parsed, so this process never
            # waits for them while it has tables to parse.
            raw, df, probs = _parse_table(name, raw, key, normalised=normalised, pseudonyms=pseudonyms,
                                          later=later.setdefault(name, {}) if pseudonyms else None)
            del normalised, pseudonyms
            problems.extend(probs)
            parsed[name] = df
            # Kept for the rows a later check may set aside, in the columns their report may
            # show (no free text, no personal data): the rest of the raw table is freed now.
            raw_frames[name] = _shown_rows(name, raw)
            del raw
        for name, columns in later.items():  # parsed as their table's other strings: _as_str
            for c, pseudonyms_of in columns.items():
                parsed[name][c] = _as_str(pseudonyms_of())
        del later
        if link_keys is not None:
            keys = link_keys.result()
            parsed["persons"] = parsed["persons"].assign(**{c: keys[c] for c in keys.columns})
            del keys
    except BaseException:
        for job in (link_keys, name_job):  # no child is left behind
            if job is not None:
                job.cancel()
        raise
    del link_keys
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
    # A large table's several checks (each an Arrow hash set, which lets go of the GIL) run
    # two at a time, on the core the parse left idle (rows worth it: those worth a child, see
    # forks.worth_forking); their problems are joined in order.
    checks = ThreadPoolExecutor(max_workers=2) if any(worth_forking(len(df)) for df in parsed.values()) else None
    try:
        for name in TABLE_ORDER:
            df = parsed[name]
            bad = np.zeros(len(df), dtype=bool)
            if not len(df):
                bad_rows[name] = bad
                continue
            mine = allp[(allp["table"] == name) & ~soft]
            if len(mine):
                bad[mine["row"].astype("int64").to_numpy()] = True
            refs: list[tuple[str, Callable[[], pd.Series], str]] = []
            for c in TABLES[name].columns:
                if c.ref is None:
                    continue
                rt, rc = c.ref
                keys = _ref_keys(df[rc], bad, base, rt, rc) if rt == name else \
                    _ref_keys(parsed[rt][rc], bad_rows.get(rt), base, rt, rc)
                refs.append((c.name, partial(_missing_refs, df[c.name], keys), f"refers to a missing {rt[:-1]}"))
            if name == "incident_parties":
                for ptype, rt, rc in (("person", "persons", "person_id"), ("organization", "organizations", "org_id")):
                    keys = _ref_keys(parsed[rt][rc], bad_rows.get(rt), base, rt, rc)
                    refs.append(("party_id", partial(_missing_refs, df["party_id"], keys, df["party_type"] == ptype),
                                 f"refers to a missing {rt[:-1]} (party_type {ptype})"))
            if name in ("incident_parties", "incident_notes"):
                col = "added_at" if name == "incident_parties" else "recorded_at"
                refs.append((col, partial(_before_report, col, df, parsed["incidents"], base), BEFORE_REPORT))
            spec_key = TABLES[name].key
            if base is not None and spec_key is not None and len(df):
                refs.append((spec_key, partial(_isin, df[spec_key], getattr(base, name)[spec_key]),
                             "duplicate id (already in the history)"))
            found = list(checks.map(lambda ref: ref[1](), refs)) if checks is not None and worth_forking(len(df)) \
                else [ref[1]() for ref in refs]
            for (col, _, reason), miss_rows in zip(refs, found):
                miss = miss_rows.to_numpy(dtype=bool)
                if miss.any():
                    p = _problems(name, np.flatnonzero(miss), col, df[col].to_numpy()[miss], reason)
                    allp = pd.concat([allp, p], ignore_index=True)
                    bad |= miss
            bad_rows[name] = bad
    finally:
        if checks is not None:
            checks.shutdown(cancel_futures=True)

    if len(allp):
        allp = allp.sort_values(["table", "row"], key=lambda s: s.map(TABLE_ORDER.index) if s.name == "table" else s,
                                kind="stable").reset_index(drop=True)
    if len(allp) and errors == "raise":
        raise DataValidationError(allp)
    allp["action"] = [SET_ASIDE if bad_rows.get(t, np.zeros(0, bool))[int(r)] else NULLED
                      for t, r in zip(allp["table"], allp["row"])] if len(allp) else pd.Series(dtype=object)

    out: dict[str, pd.DataFrame] = {}
    rejected: dict[str, pd.DataFrame] = {}
    for name in TABLE_ORDER:
        # Each parsed table (and its raw columns) freed as its final form is made.
        df = parsed.pop(name)
        raw_rows = raw_frames.pop(name, None)
        bad = bad_rows.get(name, np.zeros(len(df), bool))
        if bad.any():
            assert raw_rows is not None  # a table with rows was parsed, its raw columns kept
            if callable(raw_rows):
                raw_rows = raw_rows()
            # Ids, codes, times and numbers only: free text and personal data never leave.
            keep = _shown_columns(name, raw_rows.columns)
            rows = raw_rows.loc[bad, keep].copy()
            for c in rows.columns:  # a bad code or id can be anything someone typed
                if not pd.api.types.is_numeric_dtype(rows[c]) and not pd.api.types.is_datetime64_any_dtype(rows[c]):
                    rows[c] = rows[c].astype(object).map(lambda v, t=name, c=c: rejected_value(t, c, v))
            rejected[name] = rows.assign(_row=np.flatnonzero(bad))
            df = df[~bad]
            # Related-incident links to a rejected incident are dropped from the kept rows
            # only through the rejection above; nothing is silently rewritten.
        del raw_rows
        out[name] = df if name in typed and not bad.any() else _finish_types(TABLES[name], df.reset_index(drop=True))
        if base is None:
            out[name] = _one_chunk(out[name])
        elif joined:
            out[name] = pd.concat([getattr(base, name), out[name]], ignore_index=True) if len(out[name]) \
                else getattr(base, name)
    if len(allp):
        log.warning("quarantined %d row(s) in %d table(s); %d value(s) set to missing in kept rows",
                    sum(int(b.sum()) for b in bad_rows.values()), len(rejected), int((allp["action"] == NULLED).sum()))
    made_with = key_fingerprint(key) if key is not None else None
    return dict(**out, quarantine=allp, rejected=rejected, rows_read=rows_read, source=source,
                key_fingerprint=made_with)
