"""The place and the grid: how much conflict and violent crime the address and its
grid (网格) have seen lately, and whether the address keeps coming back.

The place is the dispute's own ``place_id``; when it has none, the home of a party
at as_of stands in for it.
"""

from __future__ import annotations

import numpy as np

from ..contract import PLACE_TYPES
from .common import group_min, households_at, unique_parties
from .index import HistoryIndex
from .points import PointSet
from .registry import REGISTRY, Feature
from .timeline import DAY, Timeline

FAMILY = "place"


def register() -> None:
    """Add this family's features, with their sentences in English and Chinese, to the registry."""
    R = REGISTRY.add
    R(Feature("place_type", FAMILY, "place type: {v}", "地点类型：{v}", "category", PLACE_TYPES))
    for w, en, zh in (("90d", "in the last 90 days", "近90天"), ("365d", "in the last year", "近一年")):
        R(Feature(f"place_incidents_{w}", FAMILY, f"{{v}} other records at this address {en}",
                  f"该地址{zh}有 {{v}} 条其他记录"),
          Feature(f"place_violent_{w}", FAMILY, f"{{v}} violent crimes at this address {en}",
                  f"该地址{zh}发生 {{v}} 起暴力犯罪"),
          Feature(f"grid_incidents_{w}", FAMILY, f"{{v}} records in this grid {en}", f"所在网格{zh}有 {{v}} 条记录"),
          Feature(f"grid_violent_{w}", FAMILY, f"{{v}} violent crimes in this grid {en}",
                  f"所在网格{zh}发生 {{v}} 起暴力犯罪"))
    R(Feature("place_repeat_disputes", FAMILY, "{v} other disputes at this address in the last year (repeat address)",
              "该地址近一年另有 {v} 起纠纷（重复地址）"))


def _count_excl(tl: Timeline, ent, lo, hi, own, own_rep) -> np.ndarray:
    """Events in the window, less the scored dispute itself (``own`` >= 0 means it is one of them)."""
    c = tl.count(ent, lo, hi).astype(float)
    return c - ((own >= 0) & (own_rep > lo) & (own_rep <= hi))


def compute(idx: HistoryIndex, P: PointSet) -> dict[str, np.ndarray]:
    """The place features of each point (see the module's docstring), read at its ``as_of``."""
    n = len(P)
    t = P.t
    place = P.place.copy()
    missing = place < 0
    if missing.any():
        pt, person = unique_parties(P)
        sel = missing[pt]
        h_row, h_id = households_at(idx, person[sel], t[pt[sel]])
        fallback = group_min(n, pt[sel][h_row], idx.household_place[h_id].astype(float), empty=-1)
        place = np.where(missing, fallback, place).astype(np.int64)
    has = place >= 0
    # Look up only the known places: a data set without a places table has none to index.
    grid = np.full(n, -1, dtype=np.asarray(idx.place_grid).dtype if len(idx.place_grid) else np.int64)
    grid[has] = idx.place_grid[place[has]]
    ptype = np.full(n, None, dtype=object)
    ptype[has] = idx.places_type[place[has]]
    out: dict[str, np.ndarray] = {"place_type": ptype}
    own_at_place = np.where(P.place >= 0, P.d, -1)  # only a dispute recorded at the place counts itself
    for w, days in (("90d", 90), ("365d", 365)):
        lo = t - days * DAY
        out[f"place_incidents_{w}"] = _count_excl(idx.place_events, place, lo, t, own_at_place, P.rep)
        out[f"place_violent_{w}"] = idx.place_violent.count(place, lo, t).astype(float)
        out[f"grid_incidents_{w}"] = _count_excl(idx.grid_events, grid, lo, t, own_at_place, P.rep)
        out[f"grid_violent_{w}"] = idx.grid_violent.count(grid, lo, t).astype(float)
    out["place_repeat_disputes"] = _count_excl(idx.place_disputes, place, t - 365 * DAY, t, own_at_place, P.rep)
    return out
