"""Small helpers the feature families share: party aggregation and windows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .index import DAY, OFF
from .points import PointSet

WINDOWS = {"30d": 30, "90d": 90, "365d": 365, "all": None}


def lo_of(t: np.ndarray, days: int | None) -> np.ndarray:
    """Window start (exclusive) for a window of ``days`` ending at ``t``; None = all history."""
    return np.full_like(t, -OFF) if days is None else t - days * DAY


def unique_parties(P: PointSet) -> tuple[np.ndarray, np.ndarray]:
    """(point, person) once per canonical person and point, unknown persons dropped."""
    known = P.pp_person >= 0
    key = pd.DataFrame({"pt": P.pp_pt[known], "person": P.pp_person[known]}).drop_duplicates()
    return key["pt"].to_numpy(np.int64), key["person"].to_numpy(np.int64)


def group_max(n: int, owner: np.ndarray, values: np.ndarray, empty: float = 0.0) -> np.ndarray:
    """Max of ``values`` per owner in 0..n-1 (``empty`` where an owner has none)."""
    out = np.full(n, -np.inf)
    np.maximum.at(out, owner, values.astype(float))
    out[np.isneginf(out)] = empty
    return out


def group_min(n: int, owner: np.ndarray, values: np.ndarray, empty: float = np.nan) -> np.ndarray:
    out = np.full(n, np.inf)
    np.minimum.at(out, owner, values.astype(float))
    out[np.isposinf(out)] = empty
    return out


def group_sum(n: int, owner: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.bincount(owner, weights=values.astype(float), minlength=n)[:n]


def group_nunique(n: int, owner: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Distinct ``values`` per owner."""
    if len(owner) == 0:
        return np.zeros(n)
    u = pd.DataFrame({"o": owner, "v": values}).drop_duplicates()
    return np.bincount(u["o"].to_numpy(), minlength=n)[:n].astype(float)


def ceil_days(seconds: np.ndarray) -> np.ndarray:
    return seconds / float(DAY)


def households_at(idx, persons: np.ndarray, t: np.ndarray) -> pd.DataFrame:
    """(row, household) for each query row's households at its time t (started, not ended)."""
    ms = idx.memberships
    owner, pos = ms.expand(persons, np.full(len(persons), -OFF), t)
    live = ms.payload["end"][pos] > t[owner]
    return pd.DataFrame({"row": owner[live], "household": ms.payload["household"][pos][live]}).drop_duplicates()
