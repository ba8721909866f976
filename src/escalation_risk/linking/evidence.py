"""Graph evidence for linkage: whom, where and in which grid each person record appears.

Two records of one person, kept by two systems, still share the rest of that person's
life: the same counterpart in their disputes and police calls (the neighbour, the
spouse, the landlord), the same places, the same household, the same grid. A general
linker sees only the identifiers; this module turns the district's graph into
*evidence items* per record, which :mod:`.comparisons` compares like any field:

- ``counterparty``: the other parties of the record's incidents (an incident of more
  than :data:`escalation_risk.known.MAX_GROUP` persons at the record's arrival ties
  nobody, the rule :func:`~escalation_risk.known.tie_members` keeps) and the other side
  of its ``relations``. A counterpart person is named by their id number's keyed hash
  where they have one (so the counterpart's own duplicate records count as one), else
  by their record; an organisation by its id.
- ``household``: the households the record is a member of.
- ``place``: the places of its incidents and of its households.
- ``grid``: the grids of those places.

Items are keyed hashes of ids already pseudonymous (person, place and grid ids), never a
name or a raw identifier. How often each item is held is its term frequency: a counterpart
shared by hundreds of records (a bank, a property company) counts for little.

Point in time: with ``as_of``, every item comes from records known then, by the rules of
:mod:`escalation_risk.known` (incidents by ``reported_at``, parties by ``added_at``,
memberships by ``start_date``, relations by ``since``); the items of a person record not
yet recorded (``persons.recorded_at`` after ``as_of``) are dropped with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..known import (
    MAX_GROUP,
    known_incidents,
    known_members,
    known_parties,
    not_after,
    party_since,
    persons_at,
    tie_members,
)

KINDS = ("counterparty", "household", "place", "grid")
EVIDENCE_COLUMNS = ["person_id", "kind", "item"]
# The rarest items kept per record and kind (the strongest evidence): bounds the work per
# pair at K x K comparisons whatever a record's history.
MAX_ITEMS = {"counterparty": 4, "household": 1, "place": 3, "grid": 2}


def _hash(prefix: str, values: np.ndarray) -> np.ndarray:
    h = pd.util.hash_array(np.asarray([prefix + str(v) for v in values], dtype=object)).view(np.int64).copy()
    h[h == 0] = 1  # 0 means "no item"
    return h


def _hash_ids(prefix: str, values: pd.Series) -> np.ndarray:
    """Keyed-by-prefix int64 hash of each id, computed once per distinct id."""
    codes, uniq = pd.factorize(values.astype(object), use_na_sentinel=True)
    h = _hash(prefix, np.asarray(uniq, dtype=object))
    out = np.zeros(len(values), dtype=np.int64)
    ok = codes >= 0
    out[ok] = h[codes[ok]]
    return out


def _frame(person_id: np.ndarray, kind: str, item: np.ndarray) -> pd.DataFrame:
    ok = item != 0
    return pd.DataFrame({"person_id": np.asarray(person_id, dtype=object)[ok], "kind": kind, "item": item[ok]})


def graph_evidence(tables: Mapping[str, pd.DataFrame], as_of=None) -> pd.DataFrame:
    """Evidence items (``person_id``, ``kind``, ``item``) of every person record.

    ``tables`` are contract tables by name (a :class:`~escalation_risk.dataset.Dataset`'s
    ``tables()``, or raw frames holding at least ``persons``, ``incidents``,
    ``incident_parties`` and ``places``; ``households``, ``household_members`` and
    ``relations`` are used when present). ``as_of``: only what was known then.
    """
    persons = tables["persons"]
    incidents, parties = tables["incidents"], tables["incident_parties"]
    members = tables.get("household_members")
    relations = tables.get("relations")
    if as_of is not None:
        persons = persons_at(persons, as_of)
        incidents = known_incidents(incidents, as_of)
        parties = known_parties(parties[parties["incident_id"].isin(incidents["incident_id"])],
                                tables["incidents"], as_of)
        if members is not None:
            members = known_members(members, as_of)
        if relations is not None:
            relations = relations[not_after(relations["since"], as_of, null_known=True)]
    pid_all = persons["person_id"].astype(object)
    if "recorded_at" in persons and as_of is not None:
        # A record not yet recorded holds no evidence (persons_at blanked its identifiers).
        late = persons["recorded_at"].to_numpy(dtype="datetime64[ns]") > np.datetime64(pd.Timestamp(as_of))
        known_ids = pd.Index(pid_all[~late])
    else:
        known_ids = pd.Index(pid_all)
    # A counterpart person is their firm id number where they have one, else their record.
    ident = _hash_ids("p:", pid_all)
    if "lk_id" in persons:
        lk = persons["lk_id"].to_numpy(dtype=np.int64, na_value=0)
        ident = np.where(lk != 0, lk, ident)
    ident_of = pd.Series(ident, index=pd.Index(pid_all))
    out: list[pd.DataFrame] = []

    # Counterparties in incidents, under the group-size cap judged at each arrival.
    is_person = (parties["party_type"].astype(object) == "person").to_numpy()
    inc_pos = pd.Index(incidents["incident_id"].astype(object)).get_indexer(parties["incident_id"].astype(object))
    since = party_since(parties, incidents, inc_pos).to_numpy(dtype="datetime64[ns]").view(np.int64)
    party_ident = np.where(is_person, 0, _hash_ids("o:", parties["party_id"]))
    if is_person.any():
        party_ident[is_person] = ident_of.reindex(parties["party_id"][is_person].astype(object)).fillna(0) \
            .to_numpy(dtype=np.int64)
    pcode, puniq = pd.factorize(pd.Series(np.where(is_person, "p" + parties["party_id"].astype(str),
                                                   "o" + parties["party_id"].astype(str))))
    ok = inc_pos >= 0
    g, gp, _ = tie_members(inc_pos[ok], pcode[ok], since[ok], MAX_GROUP)
    if len(g):
        # Each member's counterparts: the other members of the same incident.
        first = pd.DataFrame({"pcode": pcode[ok], "ident": party_ident[ok], "person": is_person[ok],
                              "pid": parties["party_id"].astype(object).to_numpy()[ok]}).drop_duplicates("pcode")
        first = first.set_index("pcode")
        tm = pd.DataFrame({"g": g, "p": gp})
        pairs = tm.merge(tm, on="g", suffixes=("", "_o"))
        pairs = pairs[pairs["p"] != pairs["p_o"]]
        who = first.reindex(pairs["p"].to_numpy())
        other = first["ident"].reindex(pairs["p_o"].to_numpy()).to_numpy(dtype=np.int64)
        mine = who["person"].to_numpy(dtype=bool)
        out.append(_frame(who["pid"].to_numpy()[mine], "counterparty", other[mine]))
    if relations is not None and len(relations):
        a, b = relations["person_a"].astype(object), relations["person_b"].astype(object)
        out.append(_frame(a.to_numpy(), "counterparty", ident_of.reindex(b).fillna(0).to_numpy(dtype=np.int64)))
        out.append(_frame(b.to_numpy(), "counterparty", ident_of.reindex(a).fillna(0).to_numpy(dtype=np.int64)))

    # Places and grids of the record's incidents and households.
    places = tables["places"]
    grid_of = pd.Series(places["grid_id"].astype(object).to_numpy(), index=places["place_id"].astype(object))
    inc_place = incidents["place_id"].astype(object).to_numpy()
    pp = parties[is_person & ok]
    pl = pd.Series(inc_place[inc_pos[is_person & ok]], dtype=object)
    loc = [(pp["party_id"].astype(object).to_numpy(), pl)]
    if members is not None and len(members):
        households = tables.get("households")
        out.append(_frame(members["person_id"].astype(object).to_numpy(), "household",
                          _hash_ids("h:", members["household_id"])))
        if households is not None and len(households):
            hplace = pd.Series(households["place_id"].astype(object).to_numpy(),
                               index=households["household_id"].astype(object))
            loc.append((members["person_id"].astype(object).to_numpy(),
                        pd.Series(hplace.reindex(members["household_id"].astype(object)).to_numpy(), dtype=object)))
    for who_ids, place in loc:
        out.append(_frame(who_ids, "place", _hash_ids("l:", place)))
        out.append(_frame(who_ids, "grid", _hash_ids("g:", pd.Series(grid_of.reindex(place).to_numpy(),
                                                                     dtype=object))))
    if not out:
        return pd.DataFrame({"person_id": pd.Series([], dtype=object), "kind": pd.Series([], dtype=object),
                             "item": pd.Series([], dtype=np.int64)})
    ev = pd.concat(out, ignore_index=True)
    ev = ev[ev["person_id"].isin(known_ids)]
    return ev.drop_duplicates(EVIDENCE_COLUMNS, ignore_index=True)


@dataclass
class _Graph:
    """Per kind: the record's rarest items (n x K, 0 = none) and how many records hold each."""

    items: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    holders: dict[str, int]  # records holding any item of the kind


def _graph_arrays(evidence: pd.DataFrame | None, pid: np.ndarray) -> _Graph | None:
    """Evidence items as padded arrays aligned with the records ``pid``; None without evidence."""
    if evidence is None:
        return None
    n = len(pid)
    rec_all = pd.Index(pd.Series(pid, dtype=object)).get_indexer(evidence["person_id"].astype(object))
    kind_all = evidence["kind"].astype(object).to_numpy()
    item_all = evidence["item"].to_numpy(dtype=np.int64)
    items, counts, holders = {}, {}, {}
    for kind in KINDS:
        k = MAX_ITEMS[kind]
        sel = (kind_all == kind) & (rec_all >= 0)
        rec, item = rec_all[sel], item_all[sel]
        a = np.zeros((n, k), dtype=np.int64)
        c = np.zeros((n, k), dtype=np.float64)
        if len(rec):
            codes = pd.factorize(item)[0]
            cnt = np.bincount(codes)[codes]
            order = np.lexsort((item, cnt, rec))  # per record, rarest first (ties by item: order-free)
            rec, item, cnt = rec[order], item[order], cnt[order]
            start = np.r_[0, np.flatnonzero(rec[1:] != rec[:-1]) + 1]
            rank = np.arange(len(rec)) - np.repeat(start, np.diff(np.r_[start, len(rec)]))
            keep = rank < k
            a[rec[keep], rank[keep]] = item[keep]
            c[rec[keep], rank[keep]] = cnt[keep]
        items[kind], counts[kind], holders[kind] = a, c, int((a[:, 0] != 0).sum())
    return _Graph(items=items, counts=counts, holders=holders)


def _shared(g: _Graph, kind: str, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(both hold items, share one, records holding the rarest shared item) for pairs (i, j)."""
    a, c = g.items[kind], g.counts[kind]
    ai = a[i]
    bj = a[j]
    present = (ai[:, 0] != 0) & (bj[:, 0] != 0)
    best = np.full(len(i), np.inf)
    for q in range(a.shape[1]):
        # An item's count is the same on both sides: the rarest shared one is found from j's.
        hit = (ai == bj[:, q:q + 1]).any(axis=1) & (bj[:, q] != 0)
        best = np.where(hit, np.minimum(best, c[j, q]), best)
    shared = present & np.isfinite(best)
    return present, shared, np.where(shared, best, 0.0)
