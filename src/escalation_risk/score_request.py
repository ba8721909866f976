"""One call to the ``Scorer``: its dispute validated as a file's rows, and the history's rows
that new rows name (what ``Scorer.add`` validates them against). Split from
:mod:`escalation_risk.scoring`, which re-exports these names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import clock
from .contract import TABLES
from .dataset import Dataset, DataValidationError, as_records, parse_records
from .features import HistoryIndex
from .features.delta import Stacked


def _problem(table: str, column: str, value, reason: str, row: int | None = 0) -> DataValidationError:
    shown = "" if value is None else (repr(value) if isinstance(value, str) else str(value))
    return DataValidationError(pd.DataFrame([{"table": table, "row": row, "column": column,
                                              "value": shown[:40], "reason": reason}]))


def _parse_as_of(as_of) -> pd.Timestamp:
    """The moment to score at, by the one rule (a date: its end; an offset converted; none: now in the zone)."""
    if as_of is None:
        return clock.now().floor("s")
    try:
        return clock.to_moment(as_of, what="as_of")
    except clock.MomentError:
        raise _problem("score_dispute", "as_of", as_of if isinstance(as_of, str) else type(as_of).__name__,
                       "not an ISO 8601 timestamp", row=None) from None


@dataclass(frozen=True)
class _Request:
    """One validated call: the contract's columns as plain values (no DataFrame)."""

    incident: dict[str, list]
    parties: dict[str, list]
    mediations: dict[str, list] | None
    as_of: pd.Timestamp
    notes: dict[str, list] | None = None


def parse_request(dispute: Mapping, parties: Iterable[Mapping] | pd.DataFrame,
                  mediations: Iterable[Mapping] | pd.DataFrame = (), as_of=None,
                  notes: Iterable[Mapping] | pd.DataFrame = ()) -> _Request:
    """Validate one call's dicts as a file's rows would be (same checks, same messages),
    plus what only a call can get wrong: no party, rows of another dispute, an ``as_of``
    that does not parse or comes before the dispute's ``reported_at``."""
    inc = as_records(dispute, "dispute", kind="dispute")
    if len(inc) != 1:
        raise ValueError("score_dispute takes exactly one dispute")
    incident = parse_records("incidents", inc)
    if incident["kind"][0] != "dispute":
        raise _problem("incidents", "kind", incident["kind"][0], "score_dispute scores disputes only")
    did = incident["incident_id"][0]
    rows = as_records(parties, "parties", incident_id=did)
    if not rows:
        raise _problem("incident_parties", "party_id", None, "a dispute needs at least one party; none given",
                       row=None)
    prs = parse_records("incident_parties", rows)
    meds = as_records(mediations, "mediations", incident_id=did)
    med = parse_records("mediations", meds) if meds else None
    given_notes = as_records(notes, "notes", incident_id=did)
    note_cols = parse_records("incident_notes", given_notes) if given_notes else None
    for table, cols in (("incident_parties", prs), ("mediations", med), ("incident_notes", note_cols)):
        for i, v in enumerate(cols["incident_id"] if cols else ()):
            if v != did:
                raise _problem(table, "incident_id", v, f"must be the scored dispute's incident_id {did!r}", row=i)
    # Contract 1.1, as a file is checked: no party added and no note written before the report.
    rep = incident["reported_at"][0]
    for table, cols, col in (("incident_parties", prs, "added_at"), ("incident_notes", note_cols, "recorded_at")):
        for i, v in enumerate(cols.get(col, ()) if cols else ()):
            if v is not None and v < rep:
                raise _problem(table, col, v.isoformat(), "must not be before its incident's reported_at", row=i)
    when = _parse_as_of(as_of)
    if when < incident["reported_at"][0]:
        raise _problem("score_dispute", "as_of", when.isoformat(),
                       f"is before the dispute's reported_at {incident['reported_at'][0].isoformat()}: "
                       f"nothing is known of it then", row=None)
    return _Request(incident, prs, med, when, note_cols)


def _check_references(idx: HistoryIndex, req: _Request) -> None:
    """Places and organisations must be the history's: an unknown one would silently read
    as "no records there". People may be new (a first dispute); they have no record yet."""
    place = req.incident["place_id"][0]
    if place is not None and idx.place_positions([place])[0] < 0:
        raise _problem("incidents", "place_id", place, "refers to a place the history does not hold "
                       "(add the place first)")
    for i, (ptype, pid) in enumerate(zip(req.parties["party_type"], req.parties["party_id"])):
        if ptype == "organization" and idx.org_positions([pid])[0] < 0:
            raise _problem("incident_parties", "party_id", pid, "refers to an organisation the history does not "
                           "hold (add the organisation first)", row=i)


def _context(history: Stacked, idx: HistoryIndex, frames: dict[str, pd.DataFrame | list[dict]],
             indexed: Stacked | None = None) -> Dataset:
    """The history's rows that new rows (frames, or lists of records) name (references) or
    share a key with (duplicates), found through the index's id look-ups: what validating
    the new rows needs to see. ``indexed``: the part of ``history`` that ``idx`` indexes,
    when rows accepted since are not in it yet (a rebuild pending): those few rows are all taken."""
    index_of = {"persons": idx._pid_index, "places": idx.places, "organizations": idx.orgs,
                "households": idx.households, "incidents": idx.incidents, "mediations": idx.med_ids,
                "incident_notes": idx.note_ids}
    wanted: dict[str, list] = {name: [] for name in index_of}

    def values(rows: pd.DataFrame | list[dict], col: str) -> list:
        if isinstance(rows, pd.DataFrame):
            return rows[col].tolist() if col in rows.columns else []
        return [r.get(col) for r in rows] if any(col in r for r in rows) else []

    def ids(vals: list, keep: list[bool] | None = None) -> list:
        return [str(v).strip() for i, v in enumerate(vals) if (keep is None or keep[i])
                and not (v is None or (not isinstance(v, str) and pd.isna(v)))]

    for name, rows in frames.items():
        spec = TABLES.get(name)
        if spec is None:
            continue  # Dataset.append names the unknown table
        if spec.key is not None and name in wanted:
            wanted[name] += ids(values(rows, spec.key))
        for c in spec.columns:
            if c.ref is not None and c.ref[0] in wanted:
                wanted[c.ref[0]] += ids(values(rows, c.name))
        kinds = values(rows, "party_type")
        if name == "incident_parties" and kinds:
            kind = [str(v).strip().lower() for v in kinds]  # as pandas' astype(str): None is 'None'
            party = values(rows, "party_id")
            wanted["persons"] += ids(party, [k == "person" for k in kind])
            wanted["organizations"] += ids(party, [k == "organization" for k in kind])
    tables = {}
    for name in TABLES:
        pos = np.zeros(0, np.int64)
        if name in wanted and wanted[name]:
            pos = index_of[name].get_indexer(pd.unique(np.array(wanted[name], dtype=object)))
        pos = np.sort(pos[pos >= 0])
        if indexed is not None and history.n(name) > indexed.n(name):
            pos = np.concatenate([pos, np.arange(indexed.n(name), history.n(name))])
        tables[name] = history.rows(name, pos)
    return Dataset(**tables)
