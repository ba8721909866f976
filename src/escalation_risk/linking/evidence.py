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
- ``place_time``: a place of the record's incidents with the time the incident was
  reported, in windows of :data:`PLACE_WINDOW_DAYS` (each incident names its window and
  the next, so two incidents at one place share an item when reported within one window
  of each other, and never when more than two apart). A police call and the mediation of
  the same quarrel happen at one door within days; a market's hundreds of visitors rarely
  do in the same weeks, and the term frequency of the (place, window) says how rarely.
- ``incident_kind``: the kinds of incident the record is a party of (not an item two
  records share by chance, but a trait compared as a set: :data:`TRAITS`, the
  ``incident_kinds`` level, disjoint or shared). A police system keeps its calls and
  cases, a mediation centre its disputes: one person's records in two systems are seen
  in disjoint kinds more often than two people are.

Each kind is held as a sparse matrix, records x items (:class:`GraphEvidence`), built
straight from the tables with integer codes (ids are coded from their bytes by :mod:`.ids`,
never through a Python object per id) and compared pair by pair with sparse row products:
every item a record holds is compared, not a capped few. Whether a record holds any item of a
kind is evidence too (``household_held``: a second system's record is often in no household;
in the default generator, never).

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import sparse

from ..clock import to_moment
from ..known import (
    MAX_GROUP,
    known_incidents,
    known_members,
    known_parties,
    not_after,
    party_since,
    tie_members,
)
from ..lookup import arrow_strings
from .ids import _codes, _Index, _positions

KINDS = ("counterparty", "household", "place", "grid", "place_time")
# Items compared as a set, not as something shared by chance: the kinds of incident each
# record is a party of (contract.INCIDENT_KINDS). A system keeps the incidents of its own
# kind (the police its calls and cases, a mediation centre its disputes), so one person's
# records kept by two systems are more often seen in disjoint kinds than two people are.
TRAITS = ("incident_kind",)
# A record's kinds are held as the bits of an int64 (GraphEvidence.kinds_seen), the sign's left alone.
MAX_INCIDENT_KINDS = 63
ITEM_KINDS = KINDS + TRAITS
PLACE_WINDOW_DAYS = 30
EVIDENCE_COLUMNS = ["person_id", "kind", "item"]


@dataclass
class GraphEvidence:
    """Graph evidence of the person records ``pid``: per kind, a records x items matrix
    (CSR, 0/1, each row's items in order) and how many records hold each item (its term
    frequency); ``holders``: records holding any item of the kind. Items are codes that
    name a counterpart, household, place or grid within this object, never a value."""

    pid: np.ndarray
    mats: dict[str, sparse.csr_matrix]
    counts: dict[str, np.ndarray]
    holders: dict[str, int]
    _held: np.ndarray | None = field(default=None, repr=False, compare=False)
    _seen: np.ndarray | None = field(default=None, repr=False, compare=False)
    # The records' ids as the Arrow text they were read from, and their column's dtype: a
    # linkage of the same records takes ``pid`` from here instead of making a Python object
    # per id again.
    _ids: pa.Array | None = field(default=None, repr=False, compare=False)
    _ids_dtype: Any = field(default=None, repr=False, compare=False)
    # Whether those ids were found unique and present when the evidence's index was built.
    _ids_unique: bool = field(default=False, repr=False, compare=False)

    def same_ids(self, ids: pd.Series) -> bool:
        """Whether ``ids`` are this evidence's records' ids, in order, in a column of the same
        dtype (the text alone reads the number 1 as "1": ``pid`` would then hold the other
        column's values). Never for a column of objects: one dtype says nothing of the
        objects' types, and its own objects cost nothing to take."""
        return (self._ids is not None and ids.dtype == self._ids_dtype and ids.dtype != object
                and len(ids) == len(self.pid) and arrow_strings(ids).equals(self._ids))

    def unique_ids(self, ids: pd.Series) -> bool:
        """Whether ``ids`` are :meth:`same_ids` and known unique, none missing (checked when the
        evidence was built: a linkage of the same records need not check them again)."""
        return self._ids_unique and self.same_ids(ids)

    def items_held(self) -> dict[str, np.ndarray]:
        """Per kind, how many items each record holds."""
        return {k: np.diff(m.indptr) for k, m in self.mats.items()}

    def mean_items(self) -> dict[str, float]:
        """Per kind, the mean number of items a holder holds."""
        return {k: m.nnz / max(self.holders.get(k, 0), 1) for k, m in self.mats.items()}

    def held(self) -> np.ndarray:
        """Per record, a bit per kind (:data:`KINDS` order) that it holds any item of: made
        once, then kept."""
        if self._held is None:
            out = np.zeros(len(self.pid), dtype=np.int8)
            for kc, k in enumerate(KINDS):
                out |= ((np.diff(self.mats[k].indptr) > 0) << kc).astype(np.int8)
            self._held = out
        return self._held

    def kinds_seen(self) -> np.ndarray | None:
        """Per record, a bit per kind of incident it is a party of (int64; 0: none), made once,
        then kept; None when the evidence holds no incident kinds."""
        a = self.mats.get("incident_kind")
        if a is None:
            return None
        if self._seen is None:
            _check_kinds(a.shape[1])
            bits = np.left_shift(np.int64(1), a.indices.astype(np.int64))
            out = np.zeros(a.shape[0], dtype=np.int64)
            full = np.diff(a.indptr) > 0
            if full.any():
                out[full] = np.bitwise_or.reduceat(bits, a.indptr[:-1][full])
            self._seen = out
        return self._seen

    def for_records(self, pid: np.ndarray) -> GraphEvidence:
        """The same evidence with rows aligned to ``pid`` (records it lacks hold nothing)."""
        if len(pid) == len(self.pid) and (pid is self.pid or np.array_equal(pid, self.pid)):
            return self
        pos = _positions(pd.Series(pid, dtype=object), pd.Series(self.pid, dtype=object))
        mats = {}
        for kind, a in self.mats.items():
            ext = sparse.vstack([a, sparse.csr_matrix((1, a.shape[1]), dtype=a.dtype)], format="csr")
            mats[kind] = ext[np.where(pos >= 0, pos, a.shape[0])]
        holders = {kind: int((np.diff(m.indptr) > 0).sum()) for kind, m in mats.items()}
        return GraphEvidence(pid=np.asarray(pid, dtype=object), mats=mats, counts=dict(self.counts),
                             holders=holders)


def _bits(x: int) -> int:
    return max(int(x), 1).bit_length()


_KEY_BITS = 62  # a record and an item packed into one int64 sort key (sign bit kept clear)


# Entries per block of the passes over sorted keys below: each block's temporaries stay in the
# cache and are reused by the allocator (an array of millions of int64 keys is mapped fresh and
# faulted in page by page, which costs more than the arithmetic on it).
_BLOCK = 1 << 16


def _matrix(rec: np.ndarray, item: np.ndarray, n: int, width: int | None = None, also_next: bool = False
            ) -> sparse.csr_matrix:
    """Records x items, 0/1: each (record, item) once, each row's items in order (one sort of
    a packed int64 key: numpy's sort is several times faster than hashing millions of keys).
    ``also_next``: each record holds item + 1 too (below ``width``), a window and the next:
    written after each key whose next key is not already that one (the keys stay in order,
    no second sort). After the sort, the keys are read block by block: made unique in place,
    then the items and each record's count written straight from them (no second array of
    keys, of their records or of their repeats)."""
    ok = (rec >= 0) & (item >= 0)
    if not ok.all():
        rec, item = rec[ok], item[ok]
    width = int(item.max(initial=-1)) + 1 if width is None else int(width)
    shift = _bits(width)
    if _bits(n) + shift > _KEY_BITS:
        rec, item = rec.astype(np.int64, copy=False), item.astype(np.int64, copy=False)
        if also_next:
            nxt = item + 1 < width
            rec, item = np.concatenate([rec, rec[nxt]]), np.concatenate([item, item[nxt] + 1])
        a = sparse.csr_matrix((np.ones(len(rec), dtype=np.int32), (rec, item)), shape=(n, width))
        a.data = np.ones(len(a.data), dtype=np.int8)
        return a
    key = rec.astype(np.int64)  # a copy of its own (records and items may come in int32), then in place
    key <<= np.int64(shift)
    key |= item
    key.sort()  # in place: no second copy of millions of keys
    key = key[:_unique_sorted(key)]
    low = np.int64((1 << shift) - 1)
    add = None
    total = len(key)
    if also_next and len(key):
        # Sorted, unique keys k: k + 1 follows k unless it is the next key already, or its item
        # is past the width (an item past the width is no item; it never carries into the
        # record's bits, the width being below 1 << shift).
        add = np.empty(len(key), dtype=bool)
        for b0 in range(0, len(key), _BLOCK):
            b1 = min(b0 + _BLOCK, len(key))
            here, flag, after = key[b0:b1], add[b0:b1], key[b0 + 1: b1 + 1]  # after: one short at the end
            np.not_equal(after, here[:len(after)] + 1, out=flag[:len(after)])
            flag[len(after):] = True
            flag &= (here & low) + 1 < width
        total += int(np.count_nonzero(add))
    # The items in the keys' low bits (int32 where they fit), each record's count from the high.
    items = np.empty(total, dtype=np.int32 if shift <= 31 else np.int64)
    per_rec = np.zeros(n, dtype=np.int64)
    at = 0
    for b0 in range(0, len(key), _BLOCK):
        b1 = min(b0 + _BLOCK, len(key))
        kb = key[b0:b1]
        if add is not None:
            ab = add[b0:b1]
            times = ab.astype(np.intp)
            times += 1
            kb = np.repeat(kb, times)
            np.cumsum(times, out=times)
            kb[times[ab] - 1] += 1  # each added key is the second of its pair
        np.bitwise_and(kb, low, out=items[at: at + len(kb)], casting="unsafe")
        r = kb >> np.int64(shift)
        r0 = int(r[0])
        r -= r0
        got = np.bincount(r)
        per_rec[r0: r0 + len(got)] += got
        at += len(kb)
    indptr = np.empty(n + 1, dtype=np.int64)
    indptr[0] = 0
    np.cumsum(per_rec, out=indptr[1:])
    a = sparse.csr_matrix((np.ones(total, dtype=np.int8), items, indptr), shape=(n, width))
    a.has_sorted_indices = True
    return a


def _unique_sorted(key: np.ndarray) -> int:
    """Sorted ``key`` made unique in place, block by block (each kept key moved down over the
    repeats before it); returns how many are kept, now at the front."""
    kept = 0
    prev = None
    for b0 in range(0, len(key), _BLOCK):
        kb = key[b0: b0 + _BLOCK]
        first = np.empty(len(kb), dtype=bool)
        first[0] = prev is None or kb[0] != prev
        np.not_equal(kb[1:], kb[:-1], out=first[1:])
        prev = kb[-1]  # read before the block's kept keys are written (they may land on it)
        vals = kb[first]
        key[kept: kept + len(vals)] = vals
        kept += len(vals)
    return kept


def _check_kinds(n: int) -> None:
    """Refuse more kinds of incident than a record's bits hold (two kinds sharing a bit would
    read as one)."""
    if n > MAX_INCIDENT_KINDS:
        raise ValueError(f"linkage: {n} kinds of incident, at most {MAX_INCIDENT_KINDS} can be compared")


def _kinds_seen(rec: np.ndarray, kind: np.ndarray, n: int) -> sparse.csr_matrix:
    """Records x kinds of incident, 0/1, from the party rows' records and kinds (int8 codes):
    one flag per (record, kind) set in place (no sort of millions of keys; the flags' positions
    in int32 where they fit)."""
    width = max(int(kind.max(initial=-1)) + 1, 1)
    ok = (rec >= 0) & (kind >= 0)
    small = n * width < 2**31
    code = (rec if ok.all() else rec[ok]).astype(np.int32 if small else np.int64)
    code *= width
    code += kind if ok.all() else kind[ok]
    seen = np.zeros(n * width, dtype=bool)
    seen[code] = True
    del code
    nz = np.flatnonzero(seen)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(seen.reshape(n, width).sum(axis=1), out=indptr[1:])
    a = sparse.csr_matrix((np.ones(len(nz), dtype=np.int8), (nz % width).astype(np.int32), indptr), shape=(n, width))
    a.has_sorted_indices = True
    return a


def _count(codes: np.ndarray, width: int) -> np.ndarray:
    """How many times each code 0 .. ``width`` - 1 occurs (int64): ``np.bincount`` without its
    int64 copy of int32 codes (millions of them: fresh memory, paged in)."""
    # np.add.at reads a negative code from the end (a missing row's -1 would count as the last
    # item) where bincount refuses it: refused here too, for one pass of min over the codes.
    if len(codes) and int(codes.min()) < 0:
        raise ValueError("linkage: a negative code among the codes counted")
    out = np.zeros(width, dtype=np.int64)
    np.add.at(out, codes, 1)
    return out


def _finish(pid: np.ndarray, mats: dict[str, sparse.csr_matrix], ids: pd.Series | None = None,
            unique: bool = False) -> GraphEvidence:
    """The evidence of ``mats``; ``ids``: the records' id column, kept for :meth:`GraphEvidence.same_ids`
    (``unique``: found unique and present)."""
    counts = {k: _count(a.indices, a.shape[1]) for k, a in mats.items()}
    holders = {k: int((np.diff(a.indptr) > 0).sum()) for k, a in mats.items()}
    if ids is None:
        return GraphEvidence(pid=pid, mats=mats, counts=counts, holders=holders)
    return GraphEvidence(pid=pid, mats=mats, counts=counts, holders=holders, _ids=arrow_strings(ids),
                         _ids_dtype=ids.dtype, _ids_unique=unique)


def _build(tables: Mapping[str, pd.DataFrame], as_of=None) -> GraphEvidence:
    """The evidence matrices straight from the tables (see :func:`graph_evidence`)."""
    persons = tables["persons"]
    incidents, parties = tables["incidents"], tables["incident_parties"]
    empty = pd.DataFrame()
    members = tables.get("household_members")
    relations = tables.get("relations")
    households = tables.get("households")
    places = tables["places"]
    n = len(persons)
    known = np.ones(n, dtype=bool)
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
            known = ~(persons["recorded_at"] > to_moment(as_of, what="as_of")).to_numpy(dtype=bool)
    has_rel = relations is not None and len(relations) > 0
    has_mem = members is not None and len(members) > 0
    has_hh = has_mem and households is not None and len(households) > 0
    relations = relations if relations is not None else empty
    members = members if members is not None else empty
    households = households if households is not None else empty
    pid = persons["person_id"].to_numpy(dtype=object)

    # Every person id looked up in one index of the persons' ids (a party that is an
    # organisation is not looked up: its id is of another form).
    is_person = (parties["party_type"] == "person").to_numpy(dtype=bool, na_value=False)
    party_ids = arrow_strings(parties["party_id"], combine=False)  # read chunk by chunk: no copy
    index = _Index(persons["person_id"])
    unique = index.unique()
    queries = ([relations["person_a"], relations["person_b"]] if has_rel else []) \
        + ([members["person_id"]] if has_mem else [])
    party_rec = index.find_where(party_ids, is_person)
    found = [party_rec] + (index.find_many(*queries) if queries else [])
    inc_pos = _positions(parties["incident_id"], incidents["incident_id"])
    n_inc = len(incidents)

    everyone = bool(known.all())

    def mine(rec: np.ndarray) -> np.ndarray:
        """Records not yet known hold nothing."""
        return rec if everyone else np.where((rec >= 0) & known[np.maximum(rec, 0)], rec, -1)

    # A counterpart person is their id number's keyed hash where they have one (their other
    # records then count as the same counterpart), else their record; an organisation its id.
    ident = -np.arange(1, n + 1, dtype=np.int64)
    if "lk_id" in persons:
        lk = persons["lk_id"].to_numpy(dtype=np.int64, na_value=0)
        ident = np.where(lk != 0, lk, ident)
    # The party rows' codes in int32 where they fit: a dozen arrays of millions of rows are
    # made from them, and fresh memory is paged in at a cost comparable to the arithmetic.
    code_t = np.int32 if n + len(parties) < 2**31 - 1 else np.int64
    ident = pd.factorize(ident)[0].astype(code_t)
    n_ident = int(ident.max(initial=-1)) + 1
    rec = party_rec
    party_code = np.full(len(parties), -1, dtype=code_t)
    if (~is_person).any():
        party_code[~is_person] = _codes(party_ids.filter(pa.array(~is_person)))
    ok = (inc_pos >= 0) & np.where(is_person, rec >= 0, party_code >= 0)
    party = np.where(is_person, rec, n + party_code)  # one code per party: records, then organisations
    g, p = inc_pos[ok], party[ok]
    # The group-size cap (known.tie_members, judged at each arrival) can only bite in an
    # incident with more party rows than the cap: the rest pass whole.
    rows_in = _count(g, n_inc)
    big = (rows_in > MAX_GROUP)[g]
    if big.any():
        at_big = np.zeros(len(ok), dtype=bool)  # a mask, not the positions of every row kept
        at_big[ok] = big
        rows = np.flatnonzero(at_big)  # the arrival of these rows only: the rest never need it
        del at_big
        # Only these rows and their incidents handed over, with the columns party_since reads
        # (it reads every incident's report time; a row selection of the whole parties
        # frame takes each of its text columns too).
        used, at_inc = np.unique(inc_pos[rows], return_inverse=True)
        since = party_since(parties[[c for c in ("added_at",) if c in parties]].iloc[rows],
                            incidents[["reported_at"]].iloc[used], at_inc).to_numpy(dtype="datetime64[ns]")
        gb, pb, _ = tie_members(g[big], p[big], since.view(np.int64), MAX_GROUP)
        # The rows of the members kept (few incidents are over the cap: a mask, no concatenation).
        big_rows = np.flatnonzero(big)
        span = np.int64(int(p[big_rows].max(initial=0)) + 1)
        keep = ~big
        keep[big_rows[np.isin(g[big_rows] * span + p[big_rows], gb * span + pb)]] = True
        g, p = g[keep], p[keep]
    person_row = p < n
    party_ident = np.where(person_row, ident[np.minimum(p, n - 1)] if n else 0, n_ident + (p - n))
    # records x incidents, times incidents x identities: each record's counterparts (a
    # sparse product: every pair of members once, never a Python loop).
    # Boolean operands: the product says whether a record and an identity share an incident
    # (scipy's boolean sum is an OR: no count to overflow), in a byte per entry, not four.
    width = int(party_ident.max(initial=-1)) + 1
    r_inc = sparse.csr_matrix((np.ones(int(person_row.sum()), bool), (p[person_row], g[person_row])),
                              shape=(n, n_inc))
    inc_id = sparse.csr_matrix((np.ones(len(g), bool), (g, party_ident)),
                               shape=(n_inc, max(width, n_ident, 1)))
    # The party rows are done with once the product is made: freed before it is sorted.
    del party, party_code, party_ident, g, p, person_row, rows_in, big
    cp = (r_inc @ inc_id).tocsr()
    del r_inc, inc_id
    cp.sort_indices()
    crow = np.repeat(np.arange(n, dtype=np.int32), np.diff(cp.indptr))
    cp.data[cp.indices == ident[crow]] = 0  # a counterpart is someone else
    if not everyone:
        cp.data[~known[crow]] = 0
    cp.eliminate_zeros()
    del crow
    if has_rel:
        ra, rb = found[1], found[2]
        both = (ra >= 0) & (rb >= 0)
        rel = _matrix(mine(np.r_[ra[both], rb[both]]), np.r_[ident[rb[both]], ident[ra[both]]], n, cp.shape[1])
        cp = (cp + rel).tocsr()
    cp.data = np.ones(len(cp.data), dtype=np.int8)
    cp.has_sorted_indices = True
    mats = {"counterparty": cp}

    # Places and grids of the record's incidents and households.
    n_pl = len(places)
    place_index = _Index(places["place_id"])
    inc_place = place_index.find(incidents["place_id"])
    at = is_person & ok
    ipos = inc_pos[at]  # the incident of each of the record's own rows
    prec, pplace = rec[at], inc_place[ipos]
    n_own = len(prec)  # the record's own incidents' rows; households' places join below
    # Places at overlapping times: (place, window of the report) and (place, the next window),
    # coded per incident, then read per row (one gather, not a column of each part per row).
    reported = incidents["reported_at"].to_numpy(dtype="datetime64[ns]")
    inc_dated = (inc_place >= 0) & ~np.isnat(reported)
    dated = inc_dated[ipos]
    window = np.int64(PLACE_WINDOW_DAYS * 86_400 * 10**9)
    if dated.any():
        win = reported.view(np.int64) // window  # a missing time's window is never read
        used = np.zeros(len(incidents), dtype=bool)
        used[ipos] = True
        used &= inc_dated  # the incidents of the dated rows: their windows' span, as the rows'
        lo = int(win[used].min())
        nw = int(win[used].max()) - lo + 2
        inc_code = inc_place.astype(np.int64) * nw
        inc_code += win
        inc_code -= lo
        if n_pl * nw < 2**31:  # gathered per row below: int32, half the memory
            inc_code = inc_code.astype(np.int32)
        del win, used
        mats["place_time"] = _matrix(mine(prec[dated]), inc_code[ipos[dated]], n, n_pl * nw, also_next=True)
        del inc_code
    else:
        mats["place_time"] = sparse.csr_matrix((n, 0), dtype=np.int8)
    if has_mem:
        mrec = found[-1]
        mats["household"] = _matrix(mine(mrec), _codes(members["household_id"]), n)
        if has_hh:
            hpos = _positions(members["household_id"], households["household_id"])
            hplace = place_index.find(households["place_id"])
            prec = np.r_[prec, mrec]
            pplace = np.r_[pplace, np.where(hpos >= 0, hplace[np.maximum(hpos, 0)], -1)]
    else:
        mats["household"] = sparse.csr_matrix((n, 0), dtype=np.int8)
    mats["place"] = place = _matrix(mine(prec), pplace, n, n_pl)
    # The grids of those places, from each record's places once.
    grid = _codes(places["grid_id"])
    mats["grid"] = _matrix(np.repeat(np.arange(n), np.diff(place.indptr)), grid[place.indices], n)
    # The kinds of incident the record is a party of (its own incidents), made last: the
    # places' and grids' transient arrays are freed by then.
    kind_code, kind_values = pd.factorize(incidents["kind"], sort=True)
    _check_kinds(len(kind_values))
    kind_code = kind_code.astype(np.int8)
    mats["incident_kind"] = _kinds_seen(mine(prec[:n_own]), kind_code[ipos], n)
    return _finish(pid, {k: mats[k] for k in ITEM_KINDS}, persons["person_id"], unique)


def graph_evidence(tables: Mapping[str, pd.DataFrame], as_of=None, *, as_frame: bool = True
                   ) -> pd.DataFrame | GraphEvidence:
    """Evidence items (``person_id``, ``kind``, ``item``) of every person record.

    ``tables`` are contract tables by name (a :class:`~escalation_risk.dataset.Dataset`'s
    ``tables()``, or raw frames holding at least ``persons``, ``incidents``,
    ``incident_parties`` and ``places``; ``households``, ``household_members`` and
    ``relations`` are used when present). ``as_of``: only what was known then.
    ``person_id`` is categorical over the persons' ids; ``item`` an int64 that names a
    counterpart, household, place or grid within this result (never a name or an
    identifier's value). With ``as_frame=False`` the same evidence as a
    :class:`GraphEvidence` (sparse matrices, what :func:`link_keys` compares; no frame of
    millions of rows is made).
    """
    ev = _build(tables, as_of)
    if not as_frame:
        return ev
    return _frame(ev)


def _frame(ev: GraphEvidence) -> pd.DataFrame:
    rec, kind, item = [], [], []
    kinds = [k for k in ITEM_KINDS if k in ev.mats]
    for kc, k in enumerate(kinds):
        a = ev.mats[k]
        rec.append(np.repeat(np.arange(a.shape[0]), np.diff(a.indptr)))
        item.append(a.indices.astype(np.int64) + 1)
        kind.append(np.full(a.nnz, kc, dtype=np.int8))
    r = np.concatenate(rec)
    pid = ev.pid
    unique = len(pd.unique(pid)) == len(pid)
    out = pd.DataFrame({
        "person_id": pd.Categorical.from_codes(r, categories=pd.Index(pid, dtype=object)) if unique
        else pd.Series(pid[r], dtype=object),
        "kind": pd.Categorical.from_codes(np.concatenate(kind), categories=kinds),
        "item": np.concatenate(item),
    })
    return out


def _graph_arrays(evidence: pd.DataFrame | GraphEvidence | None, pid: np.ndarray) -> GraphEvidence | None:
    """Evidence as :class:`GraphEvidence` aligned with the records ``pid``; None without evidence.
    A frame may come from elsewhere: rows in any order, repeated, for other records too."""
    if evidence is None:
        return None
    if isinstance(evidence, GraphEvidence):
        return evidence.for_records(np.asarray(pid, dtype=object))
    n = len(pid)
    who = evidence["person_id"]
    if isinstance(who.dtype, pd.CategoricalDtype):  # one look-up per category, not per row
        cats = who.cat.categories
        codes = who.cat.codes.to_numpy().astype(np.int64)
        if len(cats) == n and np.array_equal(np.asarray(cats, dtype=object), pid):
            rec_all = codes
        else:
            cat = _positions(pd.Series(np.asarray(cats, dtype=object)), pd.Series(pid, dtype=object))
            rec_all = np.where(codes >= 0, cat[np.maximum(codes, 0)], -1)
    else:
        rec_all = _positions(who, pd.Series(pid, dtype=object))
    kinds = np.asarray(evidence["kind"].astype(object), dtype=object)
    item_all = evidence["item"].to_numpy(dtype=np.int64)
    mats = {}
    for kind in ITEM_KINDS:
        sel = (kinds == kind) & (rec_all >= 0)
        if kind in TRAITS and not sel.any():
            continue  # evidence made without them: the level is missing
        item = pd.factorize(item_all[sel], sort=True)[0]  # sorted: the result does not depend on row order
        mats[kind] = _matrix(rec_all[sel], item.astype(np.int64), n)
    return _finish(np.asarray(pid, dtype=object), mats)


def _shared_all(g: GraphEvidence, i: np.ndarray, j: np.ndarray, kinds: tuple[str, ...] = KINDS
                ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per kind: (both hold items, share one, records holding the rarest shared item) for
    the pairs (i, j). Every item of both records is compared: per kind, one sparse
    elementwise product of the two records' rows, for the pairs whose records both hold an
    item of it (no matrix of every kind side by side is made: its tens of millions of
    entries cost more to write than the products read)."""
    held = g.held()
    hi, hj = held[i], held[j]
    out = {}
    n = len(i)
    for kc, k in enumerate(KINDS):
        if k not in kinds:
            continue
        bit = np.int8(1 << kc)
        present = ((hi & bit) != 0) & ((hj & bit) != 0)
        count = np.zeros(n, dtype=np.float64)
        sel = np.flatnonzero(present)
        if len(sel):
            a = g.mats[k]
            both = a[i[sel]].multiply(a[j[sel]]).tocsr()
            both.eliminate_zeros()
            if both.nnz:
                hit = np.diff(both.indptr) > 0
                count[sel[hit]] = np.minimum.reduceat(g.counts[k][both.indices], both.indptr[:-1][hit])
        out[k] = (present, count > 0, count)
    return out


def _shared(g: GraphEvidence, kind: str, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(both hold items, share one, records holding the rarest shared item) for pairs (i, j)."""
    return _shared_all(g, i, j, (kind,))[kind]
