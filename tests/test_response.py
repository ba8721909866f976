"""Levels, trend and response plans."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from escalation_risk.response import PLANS, assign_levels, choose_plan, choose_plans, choose_thresholds, compute_trend


@pytest.mark.parametrize("category,reasons,level,plan", [
    ("marriage_family", ["text_threat"], "red", "family_violence_warning"),
    ("debt", ["followup_text_weapon", "text_threat"], "orange", "weapon_threat_response"),
    ("debt", ["followup_text_weapon", "text_threat"], "blue", "routine_follow_up"),   # no alert, no plan
    ("debt", ["days_open", "log_amount", "n_male", "text_threat"], "red", "debt_mediation_judicial"),  # 4th unread
    ("marriage_family", ["pair_cohabit"], "yellow", "family_violence_warning"),
    ("neighbor", ["flag_mental_health"], "orange", "psychological_intervention"),
    ("labor_wage", ["org_open_disputes_30d"], "yellow", "group_incident_prevention"),
    ("neighbor", ["org_open_disputes_30d"], "yellow", "neighbour_mediation"),
    ("land_housing", ["hist_petition_90d_max"], "orange", "repeat_petition_handling"),
    ("contract", ["hist_police_call_30d_sum"], "red", "police_joint_visit"),
    ("medical", ["days_open"], "orange", "medical_dispute_mediation"),
    (None, [], "red", "grid_visit_24h"),
    ("debt", [], "blue", "routine_follow_up"),
])
def test_plan_rules(category, reasons, level, plan):
    assert choose_plan(category, reasons, level) == plan
    assert plan in PLANS


def test_plans_vectorised_agree_with_single():
    cases = [("debt", ["text_weapon"], "red"), (np.nan, ["flag_substance"], "blue"), ("traffic", [], "yellow"),
             ("marriage_family", ["pair_intimate"], "orange"), ("labor_wage", ["text_group"], "yellow"),
             (None, ["hist_petition_90d_max"], "red"), ("neighbor", ["net_violent"], "yellow"),
             ("debt", ["a", "b", "c", "text_threat"], "red"), ("medical", ["text_revenge"], "blue")]
    many = choose_plans([c for c, _, _ in cases], [r for _, r, _ in cases], [lv for _, _, lv in cases])
    assert list(many) == [choose_plan(c if isinstance(c, str) else None, r, lv) for c, r, lv in cases]


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
