"""Comparison levels: the agreement level of every field for candidate pairs."""

from __future__ import annotations

import numpy as np

from ..normalize import ID_BAD, ID_OTHER, ID_VALID
from .keys import _Keys
from .model import ID_CHECK, ID_CONFLICT, ID_DIFFERENT, ID_EXACT, ID_TRANSPOSED, ID_TYPO


def _agree(a: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    x = a[i]
    return (x == a[j]) & (x != 0)


def _levels(conds: list[tuple[np.ndarray, int]], n: int) -> np.ndarray:
    """The first matching level of each pair (0 where none): np.select without its copies."""
    out = np.zeros(n, dtype=np.int8)
    for cond, lv in reversed(conds):
        out[cond] = lv
    return out


def _compare(k: _Keys, i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
    """Agreement level (int8 code into LEVELS) of every field for the pairs (i, j)."""
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
                     (npres & (k.fuzzy[i] == k.fuzzy[j]), 3), (npres, 4)], m)
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
    return {"id_number": idl, "name": namel, "birth": birth, "phone": phone, "gender": gender}

