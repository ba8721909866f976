"""Levels, trend and response plans."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from escalation_risk.response import PLANS, assign_levels, choose_plan, choose_plans, choose_thresholds, compute_trend


PLAN_CASES = [
    ("marriage_family", ["text_threat"], "red", "family_violence_warning"),
    ("debt", ["followup_text_weapon", "text_threat"], "blue", "weapon_threat_response"),
    ("marriage_family", ["pair_cohabit"], "yellow", "family_violence_warning"),
    ("neighbor", ["flag_mental_health"], "orange", "psychological_intervention"),
    ("labor_wage", ["org_open_disputes_30d"], "yellow", "group_incident_prevention"),
    ("neighbor", ["org_open_disputes_30d"], "yellow", "neighbour_mediation"),
    ("land_housing", ["hist_petition_90d_max"], "orange", "repeat_petition_handling"),
    ("contract", ["hist_police_call_30d_sum"], "red", "police_joint_visit"),
    ("medical", ["days_open"], "orange", "medical_dispute_mediation"),
    (None, [], "red", "grid_visit_24h"),
    ("debt", [], "blue", "routine_follow_up"),
    (np.nan, ["flag_substance"], "blue", "psychological_intervention"),
]



@pytest.mark.parametrize("category,reasons,level,plan", PLAN_CASES)
def test_plan_rules(category, reasons, level, plan):
    assert choose_plan(category, reasons, level) == plan
    assert plan in PLANS


def test_plans_vectorised_agree_with_single():
    """One vectorised call over mixed rows gives each row the plan its rules say (known
    answers, not the single-row wrapper), in every order: rows never leak into each other."""
    for order in (range(len(PLAN_CASES)), reversed(range(len(PLAN_CASES)))):
        cases = [PLAN_CASES[i] for i in order]
        many = choose_plans([c for c, *_ in cases], [r for _, r, *_ in cases], [lv for _, _, lv, _ in cases])
        assert list(many) == [plan for *_, plan in cases]


def test_levels_follow_thresholds_and_budget():
    p = np.linspace(0, 1, 1001)
    th = choose_thresholds(p)
    assert th["red"] >= th["orange"] >= th["yellow"]
    levels = assign_levels(p, th)
    assert (levels == "red").mean() == pytest.approx(0.01, abs=0.002)
    assert np.isin(levels, ["red", "orange", "yellow"]).mean() == pytest.approx(0.10, abs=0.002)


def test_trend():
    cur = pd.DataFrame({"dispute_id": ["a", "b", "c", "d"], "probability": [0.5, 0.2, 0.1, 0.3]})
    prev = pd.DataFrame({"dispute_id": ["a", "b", "c"], "probability": [0.2, 0.21, 0.4]})
    trend, delta = compute_trend(cur, prev)
    assert list(trend) == ["rising", "steady", "falling", "new"]
    assert delta[0] == pytest.approx(0.3) and np.isnan(delta[3])
