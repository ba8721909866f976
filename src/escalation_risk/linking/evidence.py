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

Items are codes of ids already pseudonymous (person, place and grid ids, the keyed hash of
an id number), never a name or a raw identifier. How often each item is held is its term frequency: a counterpart
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
import pyarrow as pa
import pyarrow.compute as pc

from ..known import (
    MAX_GROUP,
    known_incidents,
    known_members,
    known_parties,
    not_after,
    party_since,
    tie_members,
)

KINDS = ("counterparty", "household", "place", "grid")
EVIDENCE_COLUMNS = ["person_id", "kind", "item"]
# The rarest items kept per record and kind (the strongest evidence): bounds the work per
# pair at K x K comparisons whatever a record's history.
MAX_ITEMS = {"counterparty": 4, "household": 1, "place": 3, "grid": 2}


def _arrow(ids: pd.Series | np.ndarray) -> pa.Array:
    """Ids as an Arrow string array (no copy through Python objects for Arrow-backed columns)."""
    if isinstance(ids, pd.Series | pd.Index):
        try:
            return pa.array(ids, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    return pa.array(np.asarray(ids, dtype=object), type=pa.string(), from_pandas=True)


def _positions(ids: pd.Series | np.ndarray, index: pa.Array) -> np.ndarray:
    """Position of each id in ``index`` (-1 where absent): Arrow's hash look-up, fast on strings."""
    arr = _arrow(ids)
    return pc.index_in(arr, value_set=index).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _codes(values: pd.Series | np.ndarray) -> np.ndarray:
    """1-based int64 codes of ids (0 where missing): an item names an id within one call."""
    codes = pd.factorize(pd.Series(np.asarray(values, dtype=object)), use_na_sentinel=True)[0].astype(np.int64)
    return codes + 1


def _unique_pairs(rec: np.ndarray, item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each (record, item) once, by hashing rather than sorting."""
    if not len(rec):
        return rec, item
    codes, uniq = pd.factorize(item)
    key = pd.unique(rec.astype(np.int64) * np.int64(len(uniq)) + codes)
    return key // len(uniq), np.asarray(uniq, dtype=np.int64)[key % len(uniq)]


def graph_evidence(tables: Mapping[str, pd.DataFrame], as_of=None) -> pd.DataFrame:
    """Evidence items (``person_id``, ``kind``, ``item``) of every person record.

    ``tables`` are contract tables by name (a :class:`~escalation_risk.dataset.Dataset`'s
    ``tables()``, or raw frames holding at least ``persons``, ``incidents``,
    ``incident_parties`` and ``places``; ``households``, ``household_members`` and
    ``relations`` are used when present). ``as_of``: only what was known then.
    ``person_id`` is categorical over the persons' ids; ``item`` an int64 that names a
    counterpart, household, place or grid within this result (never a name or an
    identifier's value).
    """
    persons = tables["persons"]
    incidents, parties = tables["incidents"], tables["incident_parties"]
    members = tables.get("household_members")
    relations = tables.get("relations")
    known = np.ones(len(persons), dtype=bool)
    if as_of is not None:
        incidents = known_incidents(incidents, as_of)
        parties = known_parties(parties[parties["incident_id"].isin(incidents["incident_id"])],
                                tables["incidents"], as_of)
        if members is not None:
            members = known_members(members, as_of)
        if relations is not None:
            relations = relations[not_after(relations["since"], as_of, null_known=True)]
        if "recorded_at" in persons:
            # A record not yet recorded holds no evidence (persons_at blanks its identifiers).
            known = ~(persons["recorded_at"] > pd.Timestamp(as_of)).to_numpy(dtype=bool)
    pid = persons["person_id"].to_numpy(dtype=object)
    index = _arrow(persons["person_id"])
    n = len(pid)
    # A counterpart person is their id number's keyed hash where they have one (their other
    # records then count as the same counterpart), else their record (negative codes).
    ident = -np.arange(1, n + 1, dtype=np.int64)
    if "lk_id" in persons:
        lk = persons["lk_id"].to_numpy(dtype=np.int64, na_value=0)
        ident = np.where(lk != 0, lk, ident)
    recs: dict[str, list[np.ndarray]] = {k: [] for k in KINDS}
    items: dict[str, list[np.ndarray]] = {k: [] for k in KINDS}

    def add(kind: str, rec: np.ndarray, item: np.ndarray) -> None:
        ok = (rec >= 0) & (item != 0)
        recs[kind].append(rec[ok])
        items[kind].append(item[ok])

    # Counterparties in incidents, under the group-size cap judged at each arrival.
    is_person = (parties["party_type"] == "person").to_numpy(dtype=bool, na_value=False)
    inc_pos = _positions(parties["incident_id"], _arrow(incidents["incident_id"]))
    # Every look-up of a person id in one pass over the persons' index (one hash table).
    cols = [parties["party_id"]]
    if relations is not None and len(relations):
        cols += [relations["person_a"], relations["person_b"]]
    if members is not None and len(members):
        cols.append(members["person_id"])
    pos = _positions(pd.concat([c.astype(object) if c.dtype == object else c for c in cols], ignore_index=True),
                     index)
    bounds = np.cumsum([0] + [len(c) for c in cols])
    looked = [pos[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    since = party_since(parties, incidents, inc_pos).to_numpy(dtype="datetime64[ns]").view(np.int64)
    rec = np.where(is_person, looked[0], -1)
    org = np.where(is_person, 0, _codes(parties["party_id"].where(~is_person)))
    # One code per party: persons by record, organisations after them.
    party = np.where(is_person, rec, n + org)
    party_ident = np.where(is_person, ident[np.maximum(rec, 0)], -(2 ** 50) - org)
    ok = (inc_pos >= 0) & ((rec >= 0) | ~is_person)
    g, gp, _ = tie_members(inc_pos[ok], party[ok], since[ok], MAX_GROUP)
    if len(g):
        ident_of = np.zeros(int(party.max()) + 1 if len(party) else 0, dtype=np.int64)
        ident_of[party[ok]] = party_ident[ok]
        order = np.argsort(g, kind="stable")
        g, gp = g[order], gp[order]
        starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
        sizes = np.diff(np.r_[starts, len(g)])
        # Every ordered pair of members of one incident: member -> the other's identity.
        rep = np.repeat(sizes, sizes)
        a = np.repeat(np.arange(len(g)), rep)
        first = np.repeat(np.repeat(starts, sizes), rep)
        b = first + (np.arange(len(a)) - np.repeat(np.cumsum(rep) - rep, rep))
        keep = (a != b) & (gp[a] < n)
        add("counterparty", gp[a[keep]], ident_of[gp[b[keep]]])
    if relations is not None and len(relations):
        ra, rb = looked[1], looked[2]
        both = (ra >= 0) & (rb >= 0)
        add("counterparty", ra[both], ident[rb[both]])
        add("counterparty", rb[both], ident[ra[both]])

    # Places and grids of the record's incidents and households.
    places = tables["places"]
    pl_index = _arrow(places["place_id"])
    grid_code = _codes(places["grid_id"])
    inc_place = _positions(incidents["place_id"], pl_index)
    where = [(rec[is_person & ok], inc_place[inc_pos[is_person & ok]])]
    if members is not None and len(members):
        mrec = looked[-1]
        add("household", mrec, _codes(members["household_id"]))
        households = tables.get("households")
        if households is not None and len(households):
            hpos = _positions(members["household_id"], _arrow(households["household_id"]))
            hplace = _positions(households["place_id"], pl_index)
            where.append((mrec, np.where(hpos >= 0, hplace[np.maximum(hpos, 0)], -1)))
    for r, place in where:
        has = place >= 0
        add("place", r[has], place[has] + 1)
        add("grid", r[has], grid_code[place[has]])

    out_rec, out_kind, out_item = [], [], []
    for kind in KINDS:
        if not recs[kind]:
            continue
        r, it = np.concatenate(recs[kind]), np.concatenate(items[kind])
        r, it = _unique_pairs(r[known[r]], it[known[r]])
        out_rec.append(r)
        out_item.append(it)
        out_kind.append(np.full(len(r), KINDS.index(kind), dtype=np.int8))
    r = np.concatenate(out_rec) if out_rec else np.array([], np.int64)
    out = pd.DataFrame({
        "person_id": pd.Categorical.from_codes(r, categories=pd.Index(pid, dtype=object)) if len(set(pid)) == n
        else pd.Series(pid[r], dtype=object),
        "kind": pd.Categorical.from_codes(np.concatenate(out_kind) if out_kind else np.array([], np.int8),
                                          categories=list(KINDS)),
        "item": np.concatenate(out_item) if out_item else np.array([], np.int64),
    })
    out.attrs["unique_rows"] = True  # each (record, kind, item) once: spares the check when linking
    return out


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
    index = _arrow(pd.Series(pid, dtype=object))
    who = evidence["person_id"]
    if isinstance(who.dtype, pd.CategoricalDtype):  # one look-up per category, not per row
        cat = _positions(pd.Series(who.cat.categories), index)
        codes = who.cat.codes.to_numpy()
        rec_all = np.where(codes >= 0, cat[np.maximum(codes, 0)], -1)
    else:
        rec_all = _positions(who, index)
    kinds = evidence["kind"]
    if isinstance(kinds.dtype, pd.CategoricalDtype):  # compare small codes, not strings
        kind_all = np.asarray(kinds.cat.categories, dtype=object)[kinds.cat.codes.to_numpy()] \
            if list(kinds.cat.categories) != list(KINDS) else None
        kind_code = kinds.cat.codes.to_numpy()
    else:
        kind_all, kind_code = None, None
    if kind_code is None or kind_all is not None:
        names = np.asarray(kinds, dtype=object)
        kind_code = np.full(len(names), -1, dtype=np.int64)
        for code, kind in enumerate(KINDS):
            kind_code[names == kind] = code
    item_all = evidence["item"].to_numpy(dtype=np.int64)
    items, counts, holders = {}, {}, {}
    for kc, kind in enumerate(KINDS):
        k = MAX_ITEMS[kind]
        sel = (kind_code == kc) & (rec_all >= 0)
        rec, item = rec_all[sel], item_all[sel]
        a = np.zeros((n, k), dtype=np.int64)
        c = np.zeros((n, k), dtype=np.float64)
        if len(rec):
            if not evidence.attrs.get("unique_rows"):  # frames from elsewhere may repeat rows
                rec, item = _unique_pairs(rec, item)
            codes = pd.factorize(item)[0]
            cnt = np.bincount(codes)[codes]
            order = _rarest_first(rec, cnt, item)
            rec, item, cnt = rec[order], item[order], cnt[order]
            start = np.r_[0, np.flatnonzero(rec[1:] != rec[:-1]) + 1]
            rank = np.arange(len(rec)) - np.repeat(start, np.diff(np.r_[start, len(rec)]))
            keep = rank < k
            a[rec[keep], rank[keep]] = item[keep]
            c[rec[keep], rank[keep]] = cnt[keep]
        items[kind], counts[kind], holders[kind] = a, c, int((a[:, 0] != 0).sum())
    return _Graph(items=items, counts=counts, holders=holders)


def _rarest_first(rec: np.ndarray, cnt: np.ndarray, item: np.ndarray) -> np.ndarray:
    """The order putting each record's items together, rarest first (ties broken by the item
    itself, so the result does not depend on the row order): one int64 key when it fits."""
    if len(rec) and rec.max() < 2**21:
        tie = ((item.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(43)).astype(np.int64)
        key = (rec.astype(np.int64) << 42) | (np.minimum(cnt, 2**21 - 1).astype(np.int64) << 21) | tie
        return np.argsort(key)
    return np.lexsort((item, cnt, rec))


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
