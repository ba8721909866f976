"""The circle around the parties: violence close to them, and where their conflicts led.

Two ideas from the risk-assessment literature that the network counts
(:mod:`.network`: how many people around a party ever offended) leave out:

- recency: a brother convicted of assault last month weighs more than a cousin's
  theft ten years ago, so crimes, violent crimes and concerns on record among the
  household members and relatives (family relations on record) are summed with a
  decay (half-life one year);
- what a party's conflicts turned into: the share of a party's earlier
  counterparts who, after their conflict with the party and before as_of, became
  suspects in a criminal case.

The parties themselves are never part of their circle: neither a party of the
scored dispute nor its co-parties (so the scored dispute's own ties count in batch
and online alike: not at all).
"""

from __future__ import annotations

import numpy as np

from .common import group_max, households_at, members_at, minus, pack, unique_pairs, unique_parties
from .index import HistoryIndex
from .points import PointSet
from .registry import REGISTRY, Feature
from .timeline import DAY

FAMILY = "circle"
HALF_LIFE_DAYS = 365
FAMILY_TIES = ("spouse", "ex_spouse", "partner", "parent_child", "sibling", "relative")
NOTE = "household members and relatives on record, the dispute's parties excluded; decayed with a one-year half-life"


def register() -> None:
    """Add this family's features, with their sentences in English and Chinese, to the registry."""
    REGISTRY.add(
        Feature("circle_family", FAMILY, "{v} household members and relatives around the parties",
                "当事人身边共有 {v} 名家庭成员和亲属", note=NOTE),
        Feature("circle_crime_recent", FAMILY, "family around the parties: recent criminal cases weigh {v}",
                "当事人家人近期刑事案件记录强度 {v}", "number", note=NOTE),
        Feature("circle_violence_recent", FAMILY, "family around the parties: recent violence weighs {v}",
                "当事人家人近期暴力记录强度 {v}", "number", note=NOTE),
        Feature("circle_flags_recent", FAMILY, "family around the parties: recent concerns on record weigh {v}",
                "当事人家人近期关注记录强度 {v}", "number", note=NOTE),
        Feature("circle_counterparts_offended", FAMILY,
                "a party's earlier counterparts who later offended: {v}",
                "当事人此前的冲突对象中后来涉嫌犯罪的有 {v} 人",
                note="counterparts of earlier records only, a suspect in a criminal case after the tie and "
                     "before as_of"),
        Feature("circle_counterparts_offended_share", FAMILY,
                "share of a party's earlier counterparts who later offended: {v}%",
                "当事人此前的冲突对象中后来涉嫌犯罪的比例 {v}%", "number",
                note="counterparts of earlier records only, a suspect in a criminal case after the tie and "
                     "before as_of"),
    )


def _decayed(idx_tl, person: np.ndarray, t: np.ndarray, owner_n: int, owner: np.ndarray,
             where=None) -> np.ndarray:
    """Per owner: the sum over its rows' events (by t) of 0.5 ** (age / half-life)."""
    o, pos = idx_tl.expand(person, None, t)
    w = 0.5 ** ((t[o] - idx_tl.t[pos]) / DAY / HALF_LIFE_DAYS)
    if where is not None:
        w = w * where(pos)
    return np.bincount(owner[o], weights=w, minlength=owner_n)[:owner_n]


def compute(idx: HistoryIndex, P: PointSet) -> dict[str, np.ndarray]:
    """The circle features of each point (see the module's docstring), read at its ``as_of``."""
    n = len(P)
    pt, person = unique_parties(P)
    t = P.t[pt]
    # Family: household members at t and relatives by a family tie on record by t.
    m_row, m_person = members_at(idx, *households_at(idx, person, t), t)
    rel = idx.relations
    ro, rpos = rel.expand(person, None, t)
    fam = np.isin(rel.payload["relation"][rpos], FAMILY_TIES)
    row = np.concatenate([m_row, ro[fam]])
    other = np.concatenate([m_person, rel.payload["other"][rpos][fam]])
    known = other >= 0
    c_pt, c_p = minus(*unique_pairs(pt[row[known]], other[known]), pt, person)
    c_t = P.t[c_pt]
    out: dict[str, np.ndarray] = {"circle_family": np.bincount(c_pt, minlength=n)[:n].astype(float)}
    out["circle_crime_recent"] = _decayed(idx.person_events["crime_suspect"], c_p, c_t, n, c_pt)
    violent = _decayed(idx.person_events["violent_suspect"], c_p, c_t, n, c_pt)
    flags = idx.flags
    out["circle_violence_recent"] = violent + _decayed(
        flags, c_p, c_t, n, c_pt, where=lambda pos: flags.payload["flag"][pos] == "prior_violence")
    out["circle_flags_recent"] = _decayed(flags, c_p, c_t, n, c_pt)

    # Counterparts of earlier records (tied by t), the dispute's own parties left out.
    cp = idx.counterparties
    co, cpos = cp.expand(person, None, t)
    k_pt, k_other, k_tied = pt[co], cp.payload["other"][cpos], cp.t[cpos]
    keep = ~np.isin(pack(k_pt, k_other), pack(pt, person))
    co, k_pt, k_other, k_tied = co[keep], k_pt[keep], k_other[keep], k_tied[keep]
    sus = idx.person_events["crime_suspect"]
    k_t = P.t[k_pt]
    # A suspect after the tie (strictly) and by as_of.
    offended = sus.count(k_other, k_tied, k_t) > 0
    k = len(person)
    n_cp = np.bincount(co, minlength=k)[:k].astype(float)
    n_off = np.bincount(co[offended], minlength=k)[:k].astype(float)
    out["circle_counterparts_offended"] = group_max(n, pt, n_off)
    share = np.where(n_cp > 0, 100.0 * n_off / np.maximum(n_cp, 1.0), -np.inf)  # a percentage
    out["circle_counterparts_offended_share"] = group_max(n, pt, share, empty=np.nan)
    return out
