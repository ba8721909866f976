"""The household around each party at as_of: who else lives there, whether any of
them has concerns or a criminal record, whether the home has seen domestic
disputes before, and whether it is rented."""

from __future__ import annotations

import numpy as np

from .common import group_max, group_nunique, households_at, members_at, minus, unique_pairs, unique_parties
from .index import HistoryIndex
from .points import PointSet
from .registry import REGISTRY, Feature

FAMILY = "household"


def register() -> None:
    """Add this family's features, with their sentences in English and Chinese, to the registry."""
    REGISTRY.add(
        Feature("hh_coresidents", FAMILY, "{v} other people live with the parties", "与当事人同住的其他人 {v} 人"),
        Feature("hh_coresident_flags", FAMILY, "{v} co-residents with concerns on record",
                "同住人员中有 {v} 人有关注记录"),
        Feature("hh_coresident_criminal", FAMILY, "{v} co-residents with a criminal record",
                "同住人员中有 {v} 人有刑事案件记录"),
        Feature("hh_domestic_disputes", FAMILY, "{v} earlier family disputes in the parties' households",
                "当事人家庭此前有 {v} 起婚姻家庭纠纷"),
        Feature("hh_rented", FAMILY, "a party lives in rented housing", "当事人租房居住", "flag"),
    )


def compute(idx: HistoryIndex, P: PointSet) -> dict[str, np.ndarray]:
    """The household features of each point (see the module's docstring), read at its ``as_of``."""
    n = len(P)
    pt, person = unique_parties(P)
    t = P.t[pt]
    h_row, h_id = households_at(idx, person, t)
    h_pt = pt[h_row]
    out: dict[str, np.ndarray] = {"hh_rented": group_max(n, h_pt, idx.household_tenure[h_id] == "rented")}

    m_row, m_person = members_at(idx, h_row, h_id, t)
    # Everyone in the parties' households, parties included (for domestic history) ...
    e_pt, e_p = unique_pairs(pt[m_row], m_person)
    # ... and the co-residents, parties excluded.
    c_pt, c_p = minus(e_pt, e_p, pt, person)
    c_t = P.t[c_pt]
    out["hh_coresidents"] = np.bincount(c_pt, minlength=n)[:n].astype(float)
    flagged = idx.flags.count(c_p, None, c_t) > 0
    out["hh_coresident_flags"] = np.bincount(c_pt[flagged], minlength=n)[:n].astype(float)
    crim = idx.person_events["crime_suspect"].count(c_p, None, c_t) > 0
    out["hh_coresident_criminal"] = np.bincount(c_pt[crim], minlength=n)[:n].astype(float)

    dis = idx.person_events["dispute"]
    do, dpos = dis.expand(e_p, None, P.t[e_pt])
    inc = dis.payload["inc"][dpos]
    fam = (idx.inc_category[inc] == "marriage_family") & (inc != P.d[e_pt[do]])
    out["hh_domestic_disputes"] = group_nunique(n, e_pt[do][fam], inc[fam])
    return out
