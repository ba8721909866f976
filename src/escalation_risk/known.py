"""What is known at a moment t: the availability rules of every table, in one place.

The data contract says which time makes each record, and each field of a record,
exist for scoring (``reported_at``, ``added_at``, ``held_at``, ``outcome_at``,
``recorded_at``, ``start_date``, ``end_date``, ``since``, ``closed_at``). Those rules
live here and nowhere else: :meth:`Dataset.cut <escalation_risk.dataset.Dataset.cut>`,
the graph's as-of filters, the history index behind the features, the labels and
the choice of points to score all call these functions.

The rules, table by table, at a moment t:

- ``incidents``: present when ``reported_at <= t``; a ``closed_at`` after t is not yet
  known (blank, status ``open``); a link to an incident not yet reported is blank.
  ``category``, ``amount`` and ``description`` are as first recorded (contract 1.1).
  A dispute is *open* at t when ``reported_at <= t`` and not ``closed_at <= t``.
- ``incident_parties``: a party is on its incident from ``added_at`` (null: from the
  incident's ``reported_at``).
- ``mediations``: present when ``held_at <= t`` (and its incident is known); before
  ``outcome_at`` (null: ``held_at``) the outcome is ``pending``.
- ``person_attributes``: a person's attribute at t is the value of their latest row
  for it with ``recorded_at <= t``; with rows but none by t it is ``unknown``; with no
  rows it is the ``persons`` value throughout.
- ``incident_notes``, ``person_flags``: present when ``recorded_at <= t``.
- ``household_members``: present when ``start_date`` is null or ``<= t``; an
  ``end_date`` after t is blank. ``relations``: ``since`` null or ``<= t``.
- ``persons``: always present (other tables refer to them). With the optional
  ``recorded_at`` (when the source system created the record), a record recorded
  after t is known only as a row: its identifiers (``name``, ``id_number``, ``phone``
  and their linkage keys) are blank at t, so it links to nobody and lends no graph
  evidence before it exists. Without ``recorded_at`` every record is taken as known
  throughout, and record linkage reads the export as it is.
- places, households, organisations: always present.

One more rule lives here because it depends on what is known when: the group-size
cap. An incident or household with many people (a wage protest of 300, a factory
dormitory) ties nobody in pairs. With parties added over time, "many" is judged
when each person arrives: a person takes part in the group's pair ties when, at
their arrival, the group had at most :data:`MAX_GROUP` distinct persons; a pair is
tied from the later arrival of its two members. So a tie, once made, stays, and the
rule reads nothing recorded after t.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .clock import to_moment
from .contract import ATTRIBUTES, PII_COLUMNS
from .lookup import id_positions

MAX_GROUP = 50  # above this many distinct persons at arrival, a group makes no pair ties
UNKNOWN = "unknown"


def _t(t) -> pd.Timestamp:
    """The moment t by the one rule (a date: the end of that day; :func:`escalation_risk.clock.to_moment`)."""
    return to_moment(t, what="the moment t")


def not_after(times: pd.Series, t, *, null_known: bool = False) -> pd.Series:
    """``times <= t``; a null time counts as known when ``null_known`` (``since``, ``start_date``)."""
    ok = times <= _t(t)
    return ok | times.isna() if null_known else ok


def open_at(reported, closed, t):
    """The "open at t" rule: reported by t and not closed by t.

    Works on datetime Series or arrays (a null closing is NaT) and on int64 seconds
    (a null closing is a far-future sentinel): ``~(closed <= t)`` holds for both.
    """
    return (reported <= t) & ~(closed <= t)


def member_at(start, end, t):
    """A membership (or tie) runs at t when started by t and not ended by t; a null start is
    "since before the data" and a null end "still running" (here as the extreme values)."""
    return (start <= t) & ~(end <= t)


def party_since(parties: pd.DataFrame, incidents: pd.DataFrame, positions: np.ndarray | None = None) -> pd.Series:
    """When each party row is on its incident: ``added_at``, else the incident's ``reported_at``.

    ``positions`` (each party's incident row in ``incidents``, -1 if absent) spares the
    id look-up when the caller already has it.
    """
    if positions is None:
        # Incident ids are unique in a validated Dataset (the contract's key).
        positions = id_positions(incidents["incident_id"], parties["incident_id"])
    rep = np.append(incidents["reported_at"].to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT"))
    at_report = rep[np.asarray(positions)]
    added = parties["added_at"].to_numpy(dtype="datetime64[ns]") if "added_at" in parties else \
        np.full(len(parties), np.datetime64("NaT"), "datetime64[ns]")
    return pd.Series(np.where(np.isnat(added), at_report, added), index=parties.index, dtype="datetime64[ns]")


def added_by(added_at, when):
    """For labels: a party row counts when it was on its incident by ``when`` (the end of a
    point's horizon). Parties without ``added_at`` belong to their incident from the
    start; one added later counts only once added, so a label reads what the data knew
    when the horizon closed."""
    return pd.isna(added_at) | (added_at <= when)


def outcome_since(mediations: pd.DataFrame) -> pd.Series:
    """When each mediation's outcome is known: ``outcome_at``, else ``held_at``."""
    held = mediations["held_at"]
    if "outcome_at" not in mediations:
        return held
    return mediations["outcome_at"].fillna(held)


def tie_members(group: np.ndarray, person: np.ndarray, since: np.ndarray, cap: int = MAX_GROUP
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The group-size cap: (group, person, arrival) of the members that take part in pair ties.

    ``since`` is each row's arrival as sortable int64 (a null start as the minimum).
    A person arrives at their earliest row in the group; they take part when, at
    that moment, the group had at most ``cap`` distinct persons (those arriving at
    the same moment included). Pairs among the members returned are tied from the
    later arrival of the two.
    """
    group = np.asarray(group, np.int64)
    person = np.asarray(person, np.int64)
    since = np.asarray(since, np.int64)
    if len(group) == 0:
        return group, person, since
    order = np.lexsort((since, person, group))
    g, p, s = group[order], person[order], since[order]
    first = np.r_[True, (g[1:] != g[:-1]) | (p[1:] != p[:-1])]
    g, p, s = g[first], p[first], s[first]
    # Distinct persons of the group arrived at or before each member's arrival: on a
    # key sorted by (group, arrival rank), two binary searches per member.
    rank = np.unique(s, return_inverse=True)[1].astype(np.int64)
    width = np.int64(rank.max() + 2)
    key = g * width + rank + 1
    sorted_key = np.sort(key)
    size = np.searchsorted(sorted_key, key, side="right") - np.searchsorted(sorted_key, g * width, side="left")
    keep = size <= cap
    return g[keep], p[keep], s[keep]


def known_incidents(incidents: pd.DataFrame, t) -> pd.DataFrame:
    """Incidents as known at t: reported by then; later closings blank, status reset to open."""
    t = _t(t)
    inc = incidents[incidents["reported_at"] <= t].copy()
    later = inc["closed_at"] > t
    inc.loc[later, "closed_at"] = pd.NaT
    if "status" in inc:
        inc.loc[later, "status"] = "open"
    inc["related_incident_id"] = inc["related_incident_id"].where(
        inc["related_incident_id"].isin(inc["incident_id"]))
    return inc


def known_parties(parties: pd.DataFrame, incidents: pd.DataFrame, t) -> pd.DataFrame:
    """Party rows on their incident by t (``incidents``: all of them; unknown incidents give none)."""
    return parties[(party_since(parties, incidents) <= _t(t)).to_numpy()]


def known_mediations(mediations: pd.DataFrame, incident_ids, t) -> pd.DataFrame:
    """Mediations held by t on known incidents; an outcome recorded after t is ``pending``."""
    t = _t(t)
    med = mediations[mediations["incident_id"].isin(incident_ids) & (mediations["held_at"] <= t)].copy()
    if "outcome_at" in med:
        later = (med["outcome_at"] > t).to_numpy()
        if later.any():
            med.loc[later, "outcome"] = "pending"
            med.loc[later, "outcome_at"] = pd.NaT
    return med


def attribute_history(persons: pd.DataFrame, attributes: pd.DataFrame) -> pd.DataFrame:
    """Each recorded attribute as a step function: person_id, attribute, value, since.

    For every (person, attribute) with rows, a first step ``unknown`` from the
    beginning of time (``since`` NaT) and one step per row. People without rows for
    an attribute are absent: their ``persons`` value holds throughout.
    """
    cols = ["person_id", "attribute", "value", "since"]
    if attributes is None or not len(attributes):
        return pd.DataFrame({c: pd.Series([], dtype="datetime64[ns]" if c == "since" else object) for c in cols})
    a = pd.DataFrame({"person_id": attributes["person_id"].astype(object).to_numpy(),
                      "attribute": attributes["attribute"].astype(object).to_numpy(),
                      "value": attributes["value"].astype(object).to_numpy(),
                      "since": attributes["recorded_at"].to_numpy(dtype="datetime64[ns]")})
    start = a[["person_id", "attribute"]].drop_duplicates().assign(value=UNKNOWN, since=pd.NaT)
    # Rows at the same moment: the later row of the file wins, as "latest row" reads.
    out = pd.concat([start, a], ignore_index=True)
    out["since"] = out["since"].astype("datetime64[ns]")
    return out.sort_values(["person_id", "attribute", "since"], kind="stable", na_position="first",
                           ignore_index=True)


def attributes_at(persons: pd.DataFrame, attributes: pd.DataFrame, t) -> pd.DataFrame:
    """``persons`` with ``hukou`` and ``employment`` as they stood at t (the contract's rule)."""
    t = _t(t)
    out = persons.copy()
    h = attribute_history(persons, attributes)
    h = h[h["since"].isna() | (h["since"] <= t)]
    last = h.groupby(["person_id", "attribute"], sort=False).tail(1)
    for attr in ATTRIBUTES:
        v = last[last["attribute"] == attr].set_index("person_id")["value"]
        has = out["person_id"].isin(v.index).to_numpy()
        if has.any():
            col = out[attr].astype(object).to_numpy(copy=True)
            col[has] = v.reindex(out["person_id"][has]).to_numpy(dtype=object)
            out[attr] = pd.Categorical(col, dtype=persons[attr].dtype) if isinstance(
                persons[attr].dtype, pd.CategoricalDtype) else col
    return out


def known_members(members: pd.DataFrame, t) -> pd.DataFrame:
    """Household memberships started by t; an end after t is blank."""
    t = _t(t)
    hm = members[not_after(members["start_date"], t, null_known=True)].copy()
    hm.loc[hm["end_date"] > t, "end_date"] = pd.NaT
    return hm


def persons_at(persons: pd.DataFrame, t) -> pd.DataFrame:
    """``persons`` as known at t: a record whose ``recorded_at`` is after t keeps its row,
    but its identifiers and linkage keys (``lk_*``) are blank (the record cannot link yet).
    Without a ``recorded_at`` column (or where it is null) a record is known throughout."""
    if "recorded_at" not in persons.columns:
        return persons
    late = (persons["recorded_at"] > _t(t)).to_numpy(dtype=bool)
    if not late.any():
        return persons
    out = persons.copy()
    for col in out.columns:
        if col in PII_COLUMNS.get("persons", ()):
            out[col] = out[col].mask(late)  # missing, in the column's own dtype
        elif col.startswith("lk_"):
            # 0 is "missing" for every key but the sex digit, whose missing value is -1.
            out.loc[late, col] = -1 if col == "lk_id_sex" else 0
    return out


def persons_known(persons: pd.DataFrame, attributes: pd.DataFrame | None, t) -> pd.DataFrame:
    """``persons`` as known at t: hukou and employment as they stood then (``attributes``:
    ``person_attributes``' history; None keeps the exported values) and the identifiers of
    records recorded after t blank (:func:`persons_at`)."""
    return persons_at(persons if attributes is None else attributes_at(persons, attributes, t), t)


def cut_tables(tables: dict[str, pd.DataFrame], t) -> dict[str, pd.DataFrame]:
    """Every contract table as it stood at t (missing tables stay missing)."""
    t = _t(t)
    out = dict(tables)
    inc = known_incidents(tables["incidents"], t)
    ids = inc["incident_id"]
    out["incidents"] = inc
    parties = tables["incident_parties"]
    out["incident_parties"] = known_parties(parties[parties["incident_id"].isin(ids)], tables["incidents"], t)
    for name in ("mediations", "person_flags", "incident_notes", "person_attributes", "relations",
                 "household_members"):
        if name not in tables:
            continue
        df = tables[name]
        if name == "mediations":
            df = known_mediations(df, ids, t)
        elif name == "household_members":
            df = known_members(df, t)
        elif name == "relations":
            df = df[not_after(df["since"], t, null_known=True)]
        else:
            df = df[not_after(df["recorded_at"], t)]
            if name == "incident_notes":
                df = df[df["incident_id"].isin(ids)]
        out[name] = df
    if "persons" in tables:
        out["persons"] = persons_known(tables["persons"], tables.get("person_attributes"), t)
    return {k: v.reset_index(drop=True) for k, v in out.items()}


def time_varying_facts(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Which time-varying facts of contract 1.1 the data carried, one sentence each.

    A backtest can only check what the data dates: a reader of an evaluation must
    know, for instance, that without ``person_attributes`` hukou and employment were
    taken as unchanged over the whole period.
    """
    def n(name: str) -> int:
        df = tables.get(name)
        return 0 if df is None else len(df)

    out = []
    pa = n("person_attributes")
    out.append(f"person_attributes: {pa} rows, hukou and employment as they stood at each moment" if pa else
               "no person_attributes: hukou and employment taken as unchanged (their export-time values)")
    parties = tables.get("incident_parties")
    late = 0 if parties is None or "added_at" not in parties else int(parties["added_at"].notna().sum())
    out.append(f"incident_parties.added_at: {late} parties dated after their incident's report" if late else
               "no incident_parties.added_at: every party taken as present from the incident's report")
    med = tables.get("mediations")
    dated = 0 if med is None or "outcome_at" not in med else int(med["outcome_at"].notna().sum())
    out.append(f"mediations.outcome_at: {dated} outcomes dated after their session" if dated else
               "no mediations.outcome_at: every outcome taken as known at the session")
    notes = n("incident_notes")
    out.append(f"incident_notes: {notes} later notes on incidents" if notes else
               "no incident_notes: later text unknown (only descriptions as first recorded)")
    return out


__all__ = ["MAX_GROUP", "open_at", "member_at", "added_by", "party_since", "outcome_since", "tie_members",
           "known_incidents", "known_parties", "known_mediations", "attribute_history", "attributes_at",
           "known_members", "not_after", "persons_at", "persons_known", "cut_tables", "time_varying_facts"]
