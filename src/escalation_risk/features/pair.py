"""The parties as a pair: earlier conflicts between the same people, whether they
live together, and the tie on record between them (spouse, ex-spouse, neighbour,
creditor and debtor, ...)."""

from __future__ import annotations

import numpy as np

from ..contract import RELATIONS
from .common import group_max, living_together, unique_parties
from .id_index import positions
from .index import HistoryIndex
from .points import PointSet
from .registry import REGISTRY, Feature
from .timeline import DAY, SHIFT, ragged

FAMILY = "pair"
MAX_PARTIES = 12  # pairs among at most this many parties per dispute (mass disputes have hundreds)
INTIMATE = ("spouse", "ex_spouse", "partner")
# When parties hold several ties, the one reported is the first in this order.
RELATION_PRIORITY = ("ex_spouse", "spouse", "partner", "creditor_debtor", "landlord_tenant", "employer_employee",
                     "neighbor", "parent_child", "sibling", "relative", "acquaintance", "other")
_RANK = {k: float(i) for i, k in enumerate(RELATION_PRIORITY)}


def register() -> None:
    """Add this family's features, with their sentences in English and Chinese, to the registry."""
    REGISTRY.add(
        Feature("pair_prior_conflicts", FAMILY, "{v} earlier records between the same parties",
                "双方此前已有 {v} 条冲突记录"),
        Feature("pair_conflicts_365d", FAMILY, "{v} records between the same parties in the last year",
                "双方近一年有 {v} 条冲突记录"),
        Feature("pair_police_calls_30d", FAMILY, "{v} police calls between the same parties in the last 30 days",
                "双方近30天报警 {v} 次"),
        Feature("pair_cohabit", FAMILY, "the parties live in the same household", "双方同住一户", "flag"),
        Feature("pair_relation", FAMILY, "the parties' recorded tie: {v}", "双方关系：{v}", "category",
                RELATIONS + ("none",)),
        Feature("pair_intimate", FAMILY, "the parties are or were partners", "双方为（前）配偶或伴侣", "flag"),
    )


def party_pairs(P: PointSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs (pt, a, b) with a < b among each point's known person parties."""
    pt, person = unique_parties(P)  # sorted by point, then person
    rank = np.arange(len(pt)) - np.searchsorted(pt, pt, side="left")
    keep = rank < MAX_PARTIES
    pt, person = pt[keep], person[keep]
    owner, pos = ragged(np.arange(len(pt)) + 1, np.searchsorted(pt, pt, side="right"))
    return pt[owner], person[owner], person[pos]


def compute(idx: HistoryIndex, P: PointSet) -> dict[str, np.ndarray]:
    """The pair features of each point (see the module's docstring), read at its ``as_of``."""
    n = len(P)
    pt, a, b = party_pairs(P)
    t = P.t[pt]
    pid = positions(idx.pairs, a * SHIFT + b)
    ev = idx.pair_events
    own = P.d[pt]
    start, stop = ev.bounds(pid, None, t)
    total = (stop - start).astype(float)
    # The scored dispute is itself a record between its parties: leave it out.
    owner, pos = ev.expand(pid, None, t)
    is_own = ev.payload["inc"][pos] == own[owner]
    total -= np.bincount(owner[is_own], minlength=len(pid))[:len(pid)]
    y_start, _ = ev.bounds(pid, t - 365 * DAY, t)
    in_year = pos >= y_start[owner]
    year = np.bincount(owner[in_year & ~is_own], minlength=len(pid))[:len(pid)].astype(float)
    m_start, _ = ev.bounds(pid, t - 30 * DAY, t)
    police = np.bincount(owner[(pos >= m_start[owner]) & ev.payload["police"][pos]],
                         minlength=len(pid))[:len(pid)].astype(float)
    out = {"pair_prior_conflicts": group_max(n, pt, total), "pair_conflicts_365d": group_max(n, pt, year),
           "pair_police_calls_30d": group_max(n, pt, police)}

    # Living together at t: a shared household membership that has started and not ended.
    out["pair_cohabit"] = group_max(n, pt, living_together(idx, a, b, t))

    # The recorded tie, known once its `since` has passed.
    rel = idx.relations
    ro, rpos = rel.expand(a, None, t)
    match = rel.payload["other"][rpos] == b[ro]
    kinds = rel.payload["relation"][rpos][match]
    rank = np.array([_RANK.get(k, np.nan) for k in kinds.tolist()], dtype=float)
    best = group_max(n, pt[ro[match]], -rank, empty=np.nan)
    out["pair_relation"] = np.where(np.isnan(best), "none",
                                    np.array(RELATION_PRIORITY + ("none",), dtype=object)[
                                        np.nan_to_num(-best, nan=len(RELATION_PRIORITY)).astype(int)])
    out["pair_intimate"] = np.isin(out["pair_relation"], INTIMATE).astype(float)
    return out

