"""Comparison levels: the agreement level of every field for candidate pairs."""

from __future__ import annotations

import numpy as np

from ..normalize import ID_BAD, ID_OTHER, ID_VALID
from .evidence import KINDS, GraphEvidence, _shared_all
from .keys import _Keys
from .model import (
    ATTRIBUTE_FIELDS,
    ID_CHECK,
    ID_CONFLICT,
    ID_DIFFERENT,
    ID_EXACT,
    ID_TRANSPOSED,
    ID_TYPO,
    LEVELS,
    NAME_DIFFERENT,
    NAME_SHAPE,
)


def _agree(a: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    x = a[i]
    return (x == a[j]) & (x != 0)


def _levels(conds: list[tuple[np.ndarray, int]], n: int) -> np.ndarray:
    """The first matching level of each pair (0 where none): np.select without its copies."""
    out = np.zeros(n, dtype=np.int8)
    for cond, lv in reversed(conds):
        out[cond] = lv
    return out


def _compare(k: _Keys, i: np.ndarray, j: np.ndarray, graph: bool = True,
             counts: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Agreement level (int8 code into LEVELS) of every field for the pairs (i, j); the graph
    fields are ``missing`` without graph evidence (or with ``graph=False``). ``counts``, when
    given, receives per kind of graph item how many records hold the rarest shared one."""
    m = len(i)
    ida, idb = k.idn[i], k.idn[j]
    present = (ida != 0) & (idb != 0)
    exact = present & (ida == idb)
    del ida, idb
    ka, kb = k.kind[i], k.kind[j]
    shaped = ((ka == ID_VALID) | (ka == ID_BAD)) & ((kb == ID_VALID) | (kb == ID_BAD))
    seg = (_agree(k.region, i, j).astype(np.int8) + _agree(k.date, i, j) + _agree(k.seq, i, j))
    diff = present & ~exact
    check = diff & shaped & (seg == 3)
    typo = diff & shaped & ~check & ((ka == ID_BAD) | (kb == ID_BAD)) & (seg >= 2)
    both_valid = (ka == ID_VALID) & (kb == ID_VALID)
    transposed = diff & both_valid & (_agree(k.swap_even, i, j) | _agree(k.swap_odd, i, j))
    conflict = diff & ~check & ~typo & ~transposed & (both_valid | ((ka == ID_OTHER) & (kb == ID_OTHER)))
    idl = _levels([(exact, ID_EXACT), (check, ID_CHECK), (typo, ID_TYPO), (transposed, ID_TRANSPOSED),
                   (conflict, ID_CONFLICT), (present, ID_DIFFERENT)], m)

    na, nb = k.name[i], k.name[j]
    npres = (na != 0) & (nb != 0)
    namel = _levels([(npres & (na == nb), 1), (npres & (k.pinyin[i] == k.pinyin[j]), 2),
                     (npres & (k.fuzzy[i] == k.fuzzy[j]), 3), (npres & (k.shape[i] == k.shape[j]), NAME_SHAPE),
                     (npres, NAME_DIFFERENT)], m)
    del na, nb

    da, db = k.date[i], k.date[j]
    ya, yb = k.year[i].astype(np.int32), k.year[j].astype(np.int32)
    dates = (da != 0) & (db != 0)
    years = (ya != 0) & (yb != 0)
    dy = np.abs(ya - yb)
    birth = _levels([(dates & (da == db), 1), (dates & years & (dy == 0), 2), (dates, 3),
                     (years & (dy == 0), 4), (years & (dy == 1), 5), (years, 6)], m)

    pa, pb = k.phone[i], k.phone[j]
    ppres = (pa != 0) & (pb != 0)
    phone = _levels([(ppres & (pa == pb), 1), (ppres, 2)], m)

    sa, sb = k.sex[i], k.sex[j]
    spres = (sa >= 0) & (sb >= 0)
    gender = _levels([(spres & (sa == sb), 1), (spres, 2)], m)
    out = {"id_number": idl, "name": namel, "birth": birth, "phone": phone, "gender": gender}
    for f in ATTRIBUTE_FIELDS:  # missing unless the model reads them (keys._keys)
        if not k.attributes:
            out[f] = np.zeros(m, dtype=np.int8)
            continue
        a, b = getattr(k, f)[i], getattr(k, f)[j]
        # The agreed value's own level (its code), else "different" (the last).
        out[f] = np.where((a != 0) & (b != 0), np.where(a == b, a, len(LEVELS[f]) - 1), 0).astype(np.int8)
    glevels, gcounts = _compare_graph(k.graph if graph else None, i, j)
    out.update(glevels)
    if counts is not None:
        counts.update(gcounts)
    return out


def _compare_graph(g: GraphEvidence | None, i: np.ndarray, j: np.ndarray, id_missing: np.ndarray | None = None
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Graph levels of the pairs, and for each TF kind the holders of the rarest shared item.

    ``place`` takes the closest shared whereabouts: one household, else one place at
    overlapping times, else one place, else one grid (a shared household is a shared place
    and grid too: counted once). The counterpart is a field of its own: a pair sharing a
    counterpart and a place adds both weights. ``household_held``: whether one record or
    both are members of a household, in the mode of ``id_missing`` (the pairs whose id
    number is missing on a side; none when not given)."""
    m = len(i)
    zero = np.zeros(m, dtype=np.int8)
    if g is None:
        return {"counterparty": zero, "place": zero.copy(), "household_held": zero.copy(),
                "incident_kinds": zero.copy()}, {}
    sh = _shared_all(g, i, j)
    cp_present, cp_shared, cp_count = sh["counterparty"]
    counterparty = _levels([(cp_shared, 1), (cp_present, 2)], m)
    _, hh_shared, hh_count = sh["household"]
    _, pl_shared, pl_count = sh["place"]
    gr_present, gr_shared, gr_count = sh["grid"]
    _, pt_shared, pt_count = sh["place_time"]
    place = _levels([(hh_shared, 1), (pt_shared, 2), (pl_shared, 3), (gr_shared, 4), (gr_present, 5)], m)
    counts = {"counterparty": cp_count, "household": hh_count, "place_time": pt_count, "place": pl_count,
              "grid": gr_count}
    bit = np.int8(1 << KINDS.index("household"))
    held = g.held()
    ha, hb = (held[i] & bit) != 0, (held[j] & bit) != 0
    lost = np.zeros(m, dtype=bool) if id_missing is None else id_missing
    household_held = _levels([(lost & (ha != hb), 3), (lost & ha & hb, 4), (ha != hb, 1), (ha & hb, 2)], m)
    seen = g.kinds_seen()
    if seen is None:
        kinds = zero.copy()
    else:
        sa, sb = seen[i], seen[j]
        kinds = _levels([((sa & sb) != 0, 2), ((sa != 0) & (sb != 0), 1)], m)
        kinds[(kinds != 0) & (ha != hb)] += 2  # one record only in a household: the other mode
    return {"counterparty": counterparty, "place": place, "household_held": household_held,
            "incident_kinds": kinds}, counts

