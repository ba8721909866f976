"""The people themselves at as_of: age, gender, residence status and work as they
stood then (``person_attributes``), and the
concerns on record for them by then (mental health, substance use, community
correction, prior violence, key person)."""

from __future__ import annotations

import numpy as np

from ..contract import FLAGS
from .common import group_max, group_min, group_sum, unique_parties
from .index import HistoryIndex
from .points import PointSet
from .registry import REGISTRY, Feature

FAMILY = "people"
FLAG_TEXT = {
    "mental_health": ("a party has a mental-health concern on record", "当事人有精神健康方面的记录"),
    "substance": ("a party has a substance-use concern on record", "当事人有涉酒涉毒记录"),
    "community_correction": ("a party is or was under community correction", "当事人为社区矫正对象"),
    "prior_violence": ("a party has prior violence on record", "当事人有暴力前科记录"),
    "key_person": ("a party is a key person under attention", "当事人为重点关注人员"),
    "other": ("a party has another concern on record", "当事人有其他关注记录"),
}


def register() -> None:
    """Add this family's features, with their sentences in English and Chinese, to the registry."""
    R = REGISTRY.add
    R(Feature("age_max", FAMILY, "the oldest party is {v}", "最年长当事人 {v} 岁", "number", uses=("age",)),
      Feature("age_min", FAMILY, "the youngest party is {v}", "最年轻当事人 {v} 岁", "number", uses=("age",)),
      Feature("n_male", FAMILY, "{v} male parties", "男性当事人 {v} 人", uses=("gender",)),
      Feature("n_female", FAMILY, "{v} female parties", "女性当事人 {v} 人", uses=("gender",)),
      Feature("n_migrant", FAMILY, "{v} parties without local hukou", "外来人口当事人 {v} 人", uses=("hukou",)),
      Feature("n_unemployed", FAMILY, "{v} unemployed parties", "无业当事人 {v} 人"),
      Feature("n_flags", FAMILY, "{v} concerns on record for the parties", "当事人共有 {v} 条关注记录"))
    for f in FLAGS:
        en, zh = FLAG_TEXT[f]
        R(Feature(f"flag_{f}", FAMILY, en, zh, "flag"))


def compute(idx: HistoryIndex, P: PointSet) -> dict[str, np.ndarray]:
    """The people features of each point (see the module's docstring), read at its ``as_of``."""
    n = len(P)
    pt, person = unique_parties(P)
    t = P.t[pt]
    year = P.as_of.astype("datetime64[Y]").astype(int) + 1970
    age = year[pt] - idx.birth_year[person]
    out = {
        "age_max": group_max(n, pt, np.nan_to_num(age, nan=-np.inf), empty=np.nan),
        "age_min": group_min(n, pt, np.nan_to_num(age, nan=np.inf), empty=np.nan),
        "n_male": group_sum(n, pt, idx.gender[person] == "male"),
        "n_female": group_sum(n, pt, idx.gender[person] == "female"),
        # hukou and employment as they stood at as_of (person_attributes, contract 1.1)
        "n_migrant": group_sum(n, pt, idx.attribute_at("hukou", person, t) == "migrant"),
        "n_unemployed": group_sum(n, pt, idx.attribute_at("employment", person, t) == "unemployed"),
    }
    for k in ("age_max", "age_min"):
        out[k][~np.isfinite(out[k])] = np.nan
    owner, pos = idx.flags.expand(person, None, t)
    flag = idx.flags.payload["flag"][pos]
    out["n_flags"] = group_sum(n, pt[owner], np.ones(len(owner)))
    for f in FLAGS:
        out[f"flag_{f}"] = group_max(n, pt[owner], flag == f)
    return out
