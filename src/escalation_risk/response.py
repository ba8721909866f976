"""From a probability to an action: alert levels, trend, and response plans.

- Levels (red / orange / yellow / blue) come from probability thresholds stored
  in the model manifest, chosen at training so that each level fills a share of
  the alert budget (by default red the top 1% of disputes, orange the next 4%,
  yellow the next 5%), and can be overridden per run.
- Trend compares a dispute's score with its previous score: rising, steady,
  falling (and the delta), or new when it has none.
- The plan is one of the documented response plans in :data:`PLANS`. A blue
  dispute raises no alert and gets ``routine_follow_up``; an alerted one gets the
  plan its category and its first :data:`PLAN_REASONS` reasons call for. So the plan
  never depends on whether reasons were computed for a blue dispute, nor on how
  many reasons a caller asked to display: batch and online agree.

This module only holds rules on plain values; the model and the scoring layers
call it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

LEVELS = ("red", "orange", "yellow", "blue")
ALERT_LEVELS = ("red", "orange", "yellow")
# Share of disputes at or above each level (cumulative): the alert budget.
DEFAULT_BUDGET = {"red": 0.01, "orange": 0.05, "yellow": 0.10}
TREND_TOLERANCE = 0.02
PLAN_REASONS = 3  # the plan reads this many leading reasons, however many are displayed


def choose_thresholds(probabilities: np.ndarray, budget: dict[str, float] | None = None) -> dict[str, float]:
    """Probability thresholds so that each level holds its share of ``probabilities``."""
    budget = budget or DEFAULT_BUDGET
    p = np.asarray(probabilities, dtype=float)
    out = {}
    for level in ALERT_LEVELS:
        out[level] = float(np.quantile(p, 1.0 - budget[level])) if len(p) else 1.0
    # Thresholds must not cross, even on ties.
    out["orange"] = min(out["orange"], out["red"])
    out["yellow"] = min(out["yellow"], out["orange"])
    return out


def assign_levels(probabilities: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """red / orange / yellow / blue for each probability (at or above a threshold reaches it)."""
    p = np.asarray(probabilities, dtype=float)
    out = np.full(len(p), "blue", dtype=object)
    for level in reversed(ALERT_LEVELS):  # yellow first, red last, so the highest wins
        out[p >= thresholds[level]] = level
    return out


def compute_trend(current: pd.DataFrame, previous: pd.DataFrame | None,
                  tolerance: float = TREND_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """(trend, delta) of each current score against the same dispute's previous score.

    ``current`` and ``previous`` have columns dispute_id and probability. Disputes
    without a previous score are ``new`` with a NaN delta.
    """
    if previous is None or len(previous) == 0:
        return np.full(len(current), "new", dtype=object), np.full(len(current), np.nan)
    prev = previous.drop_duplicates("dispute_id", keep="last").set_index("dispute_id")["probability"]
    before = current["dispute_id"].map(prev).to_numpy(dtype=float)
    delta = current["probability"].to_numpy(dtype=float) - before
    trend = np.where(np.isnan(delta), "new",
                     np.where(delta > tolerance, "rising", np.where(delta < -tolerance, "falling", "steady")))
    return trend.astype(object), delta


@dataclass(frozen=True)
class Plan:
    """A response plan: what to do, in English and Chinese."""

    code: str
    en: str
    zh: str


PLANS: dict[str, Plan] = {p.code: p for p in (
    Plan("family_violence_warning", "Family-violence warning: police and women's federation visit, "
         "written warning (告诫书), family mediation, safety plan for the victim.",
         "家庭暴力预警：公安与妇联上门，出具告诫书，开展家庭调解，为受害方制定安全方案。"),
    Plan("family_mediation", "Family mediation by the people's mediation committee with relatives present.",
         "由人民调解委员会会同亲属开展婚姻家庭调解。"),
    Plan("psychological_intervention", "Psychological intervention for a flagged party; contact the "
         "community mental-health team and the guardian.",
         "对有关注记录的当事人开展心理干预，联系社区精神卫生工作人员及监护人。"),
    Plan("weapon_threat_response", "Threat or weapon reported: police assessment the same day, "
         "remove means of harm, separate the parties.",
         "报告有威胁或凶器：公安当日评估，排除危险物品，隔离双方。"),
    Plan("wage_arrears_coordination", "Wage-arrears coordination with labour inspection; meet the employer, "
         "watch for a gathering of workers.",
         "会同劳动监察协调欠薪问题，约谈用人单位，防范工人聚集。"),
    Plan("group_incident_prevention", "Possible group incident: joint meeting of the township, police and the "
         "organisation; stabilise the crowd, open a channel for claims.",
         "可能引发群体性事件：乡镇、公安与相关单位联席研判，稳控人员，畅通诉求渠道。"),
    Plan("debt_mediation_judicial", "Debt mediation with judicial confirmation of the agreement "
         "(司法确认); warn against self-help debt collection.",
         "债务纠纷调解并申请司法确认，警示不得采取非法手段讨债。"),
    Plan("neighbour_mediation", "Neighbour mediation on site by the grid worker and the village or residents' "
         "committee.", "由网格员会同村（居）委会现场调解邻里纠纷。"),
    Plan("land_housing_mediation", "Land or housing dispute: township land office and mediation committee "
         "verify rights on site.", "土地房屋纠纷：乡镇国土所与调委会现场核实权属并调解。"),
    Plan("property_management_mediation", "Property-management dispute: housing bureau and owners' committee "
         "meet the manager.", "物业纠纷：住建部门与业委会约谈物业公司。"),
    Plan("consumer_finance_mediation", "Consumer-finance dispute: financial mediation with the institution; "
         "check for collection harassment.", "金融消费纠纷：会同金融机构开展金融调解，核查暴力催收。"),
    Plan("medical_dispute_mediation", "Medical dispute: medical mediation committee; security at the hospital.",
         "医疗纠纷：医调委介入调解，加强医院安保。"),
    Plan("repeat_petition_handling", "Repeated petitions: leader receives the petitioner, case handled to its "
         "end by one named official.", "重复信访：领导接访，专人包案化解。"),
    Plan("police_joint_visit", "Earlier violence or police calls: joint visit by police and grid worker, "
         "warn the parties.", "有暴力或报警前史：公安与网格员联合走访，对当事人进行警示。"),
    Plan("grid_visit_24h", "Grid-worker visit within 24 hours to check on the parties and report back.",
         "网格员24小时内上门走访核实情况并反馈。"),
    Plan("routine_follow_up", "Routine follow-up by the grid worker at the next visit.",
         "网格员在下次走访时例行跟进。"),
)}

_THREAT = ("threat", "revenge", "weapon")
_GROUP = ("org_open_disputes_30d", "text_group", "n_person_parties")
_FLAGGED = ("flag_mental_health", "flag_substance", "text_self_harm", "text_drinking")
_HISTORY = ("hist_violent_suspect", "hist_crime_suspect", "hist_police_call", "pair_police_calls",
            "flag_prior_violence", "net_violent", "followup_police_calls")
_CATEGORY_PLAN = {
    "marriage_family": "family_mediation", "neighbor": "neighbour_mediation", "debt": "debt_mediation_judicial",
    "labor_wage": "wage_arrears_coordination", "land_housing": "land_housing_mediation",
    "property_management": "property_management_mediation", "consumer_finance": "consumer_finance_mediation",
    "medical": "medical_dispute_mediation",
}


_GROUP_CATEGORIES = ("labor_wage", "consumer_finance", "property_management", "land_housing")


def _mentions(joined: pd.Series, keys: Sequence[str]) -> np.ndarray:
    """Whether any reason (joined by '|') contains any of ``keys``."""
    return joined.str.contains("|".join(re.escape(k) for k in keys), regex=True).to_numpy(dtype=bool)


def choose_plans(categories: Sequence, reasons: Sequence[Sequence[str]],
                 levels: Sequence[str] | np.ndarray) -> np.ndarray:
    """The plan code of each dispute from its category, its leading reasons (feature
    names, strongest first; only the first :data:`PLAN_REASONS` are read) and its
    level: ``routine_follow_up`` when blue, else the first rule that applies."""
    cat = pd.Series(list(categories), dtype=object).where(lambda c: c.map(lambda v: isinstance(v, str)), "")
    level = np.asarray(list(levels), dtype=object)
    alert = np.isin(level, ALERT_LEVELS)
    # Reasons of blue disputes are never read: the batch does not compute them.
    joined = pd.Series([list(r)[:PLAN_REASONS] if a else [] for r, a in zip(reasons, alert)],
                       dtype=object).str.join("|").fillna("")
    family = (cat == "marriage_family").to_numpy()
    threat = _mentions(joined, _THREAT)
    rules = [
        (threat & family, "family_violence_warning"),
        (threat, "weapon_threat_response"),
        (family & _mentions(joined, ("pair_cohabit", "pair_intimate", "hh_domestic", "text_violence")),
         "family_violence_warning"),
        (_mentions(joined, _FLAGGED), "psychological_intervention"),
        (_mentions(joined, _GROUP) & cat.isin(_GROUP_CATEGORIES).to_numpy(), "group_incident_prevention"),
        (_mentions(joined, ("petition", "text_repeated_petition")), "repeat_petition_handling"),
        (_mentions(joined, _HISTORY), "police_joint_visit"),
    ]
    by_category = cat.map(_CATEGORY_PLAN).fillna("grid_visit_24h").to_numpy(dtype=object)
    plans = np.select([m for m, _ in rules], [p for _, p in rules], default=by_category)
    return np.where(alert, plans, "routine_follow_up").astype(object)


def choose_plan(category: str | None, reasons: Sequence[str], level: str) -> str:
    """:func:`choose_plans` for one dispute, without pandas (the online path's cost)."""
    if level not in ALERT_LEVELS:
        return "routine_follow_up"
    cat = category if isinstance(category, str) else ""
    joined = "|".join(list(reasons)[:PLAN_REASONS])

    def any_of(keys: Sequence[str]) -> bool:
        return any(k in joined for k in keys)

    threat = any_of(_THREAT)
    family = cat == "marriage_family"
    if threat:
        return "family_violence_warning" if family else "weapon_threat_response"
    if family and any_of(("pair_cohabit", "pair_intimate", "hh_domestic", "text_violence")):
        return "family_violence_warning"
    if any_of(_FLAGGED):
        return "psychological_intervention"
    if any_of(_GROUP) and cat in _GROUP_CATEGORIES:
        return "group_incident_prevention"
    if any_of(("petition", "text_repeated_petition")):
        return "repeat_petition_handling"
    if any_of(_HISTORY):
        return "police_joint_visit"
    return _CATEGORY_PLAN.get(cat, "grid_visit_24h")
