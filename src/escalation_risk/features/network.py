"""Network exposure: the people around the parties at as_of and how violent they are.

Ties are household co-residence, relations on record, and co-involvement in an
earlier incident (the counterparties). The first ring is everyone one tie away
from a party; the second ring goes one step further through relations and
counterparties (not households, which the household family already covers).
"""

from __future__ import annotations

import numpy as np

from .common import households_at, members_at, minus, unique_pairs, unique_parties
from .index import HistoryIndex
from .points import PointSet
from .registry import REGISTRY, Feature

FAMILY = "network"


def register() -> None:
    """Add this family's features, with their sentences in English and Chinese, to the registry."""
    REGISTRY.add(
        Feature("net_size", FAMILY, "the parties' circle counts {v} people", "当事人关系圈共 {v} 人"),
        Feature("net_criminal", FAMILY, "{v} people close to the parties have criminal records",
                "当事人身边有 {v} 人有刑事案件记录"),
        Feature("net_violent", FAMILY, "{v} people close to the parties have a history of violence",
                "当事人身边有 {v} 人有暴力记录"),
        Feature("net2_criminal", FAMILY, "{v} people two steps from the parties have criminal records",
                "当事人二度关系中有 {v} 人有刑事案件记录"),
    )


def _ties(idx: HistoryIndex, person: np.ndarray, t: np.ndarray, households: bool) -> tuple[np.ndarray, np.ndarray]:
    """(row, other) for every tie of each query person known at its t."""
    rows, others = [], []
    for tl in (idx.relations, idx.counterparties):
        o, pos = tl.expand(person, None, t)
        rows.append(o)
        others.append(tl.payload["other"][pos])
    if households:
        m_row, m_person = members_at(idx, *households_at(idx, person, t), t)
        rows.append(m_row)
        others.append(m_person)
    row, other = np.concatenate(rows), np.concatenate(others)
    known = other >= 0
    return row[known], other[known]


def compute(idx: HistoryIndex, P: PointSet) -> dict[str, np.ndarray]:
    """The network features of each point (see the module's docstring), read at its ``as_of``."""
    n = len(P)
    pt, person = unique_parties(P)
    t = P.t[pt]
    row, other = _ties(idx, person, t, households=True)
    r_pt, r_p = minus(*unique_pairs(pt[row], other), pt, person)
    r_t = P.t[r_pt]
    crim = idx.person_events["crime_suspect"].count(r_p, None, r_t) > 0
    violent = idx.person_events["violent_suspect"].count(r_p, None, r_t) > 0
    fo, fpos = idx.flags.expand(r_p, None, r_t)
    violent[fo[idx.flags.payload["flag"][fpos] == "prior_violence"]] = True
    out = {"net_size": np.bincount(r_pt, minlength=n)[:n].astype(float),
           "net_criminal": np.bincount(r_pt[crim], minlength=n)[:n].astype(float),
           "net_violent": np.bincount(r_pt[violent], minlength=n)[:n].astype(float)}

    row2, other2 = _ties(idx, r_p, r_t, households=False)
    s_pt, s_p = minus(*minus(*unique_pairs(r_pt[row2], other2), pt, person), r_pt, r_p)
    crim2 = idx.person_events["crime_suspect"].count(s_p, None, P.t[s_pt]) > 0
    out["net2_criminal"] = np.bincount(s_pt[crim2], minlength=n)[:n].astype(float)
    return out

