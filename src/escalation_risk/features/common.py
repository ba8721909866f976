"""Small helpers the feature families share: party aggregation and windows."""

from __future__ import annotations

import numpy as np

from ..known import member_at
from .points import PointSet
from .timeline import DAY, SHIFT, unique_keys

WINDOWS = {"30d": 30, "90d": 90, "365d": 365, "all": None}


def lo_of(t: np.ndarray, days: int | None) -> np.ndarray | None:
    """Window start (exclusive) for a window of ``days`` ending at ``t``; None = all history."""
    return None if days is None else t - days * DAY


def pack(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two non-negative int arrays as one sortable int64 key (b < 2**34)."""
    return np.asarray(a, np.int64) * SHIFT + np.asarray(b, np.int64)


def unpack(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two arrays :func:`pack` made ``k`` of."""
    return k // SHIFT, k % SHIFT


def unique_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (a, b) pairs, sorted by a then b (numpy only: cheap for one point too)."""
    return unpack(unique_keys(pack(a, b)))


def unique_parties(P: PointSet) -> tuple[np.ndarray, np.ndarray]:
    """(point, person) once per canonical person and point, sorted, unknown persons dropped."""
    known = P.pp_person >= 0
    return unique_pairs(P.pp_pt[known], P.pp_person[known])


def group_max(n: int, owner: np.ndarray, values: np.ndarray, empty: float = 0.0) -> np.ndarray:
    """Max of ``values`` per owner in 0..n-1 (``empty`` where an owner has none)."""
    out = np.full(n, -np.inf)
    np.maximum.at(out, owner, values.astype(float))
    out[np.isneginf(out)] = empty
    return out


def group_min(n: int, owner: np.ndarray, values: np.ndarray, empty: float = np.nan) -> np.ndarray:
    """Min of ``values`` per owner in 0..n-1 (``empty`` where an owner has none)."""
    out = np.full(n, np.inf)
    np.minimum.at(out, owner, values.astype(float))
    out[np.isposinf(out)] = empty
    return out


def group_sum(n: int, owner: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sum of ``values`` per owner in 0..n-1 (0 where an owner has none)."""
    return np.bincount(owner, weights=values.astype(float), minlength=n)[:n]


def group_nunique(n: int, owner: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Distinct non-negative int ``values`` per owner."""
    o, _ = unique_pairs(owner, values)
    return np.bincount(o, minlength=n)[:n].astype(float)


def households_at(idx, persons: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, household) for each query row's households at its time t (started, not ended)."""
    ms = idx.memberships
    owner, pos = ms.expand(persons, None, t)
    live = member_at(ms.t[pos], ms.payload["end"][pos], t[owner])
    return unique_pairs(owner[live], ms.payload["household"][pos][live])


def living_together(idx, a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Whether each query row's persons ``a`` and ``b`` share a household at its time t (both
    members at t, as :func:`households_at` has them): the one rule behind ``pair_cohabit`` and
    the separation family."""
    both = np.intersect1d(pack(*households_at(idx, a, t)), pack(*households_at(idx, b, t)))
    out = np.zeros(len(a), bool)
    out[unpack(both)[0]] = True
    return out


def members_at(idx, h_row: np.ndarray, h_id: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, person) for the members at t of the households ``h_id`` (as :func:`households_at`
    gives them, ``t`` being each query row's time); unknown persons dropped."""
    mem = idx.members
    mo, mpos = mem.expand(h_id, None, t[h_row])
    live = member_at(mem.t[mpos], mem.payload["end"][mpos], t[h_row][mo])
    person = mem.payload["person"][mpos][live]
    known = person >= 0
    return h_row[mo][live][known], person[known]


def minus(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a, b) that are not among the pairs (c, d)."""
    keep = ~np.isin(pack(a, b), pack(c, d))
    return a[keep], b[keep]
