"""What worked: plan units from a recorded store, and matching that recovers a planted effect."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import KEY

import escalation_risk as er
from escalation_risk.plan_effects import (
    CAVEAT,
    REPORT_COLUMNS,
    format_plan_report,
    plan_effects,
    plan_units,
    score_band,
)

NIGHTS = pd.date_range("2022-07-01", "2024-12-01", freq="MS") + pd.Timedelta(days=9)
PLANTED = "grid_visit_24h"


@pytest.fixture(scope="module")
def store_url(tmp_path_factory, small_district, small_model):
    """Thirty monthly nights recorded by the nightly path (scores, alerts)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'alerts.db'}"
    with er.AlertStore(url) as st:
        for night in NIGHTS:
            prev = st.previous_scores(er.model.open_points(small_district, night)["dispute_id"].tolist(),
                                      before=night)
            st.record_night(small_model.score(small_district, night, history=prev), night, small_model.version)
        # One handled alert closed as escalated: the store's outcome counts even without a crime in the data.
        a = st.alerts().iloc[-1]
        st.update(int(a["alert_id"]), "in_progress", by="w")
        st.update(int(a["alert_id"]), "escalated", by="w")
        st.update(int(a["alert_id"]), "follow_up", by="w")
        st.close(int(a["alert_id"]), by="w", outcome="affray", escalated_to_crime=True,
                 at=pd.Timestamp(a["raised_at"]) + pd.Timedelta(days=5))
    return url, str(a["dispute_id"])


@pytest.fixture(scope="module")
def units(store_url, small_district):
    with er.AlertStore(store_url[0]) as st:
        return plan_units(st, small_district)


def test_units_are_first_alerts_with_their_labels(units, store_url, small_district):
    assert units["dispute_id"].is_unique and len(units) > 1000
    with er.AlertStore(store_url[0]) as st:
        s = st.scores()
    first_alert = s[s["level"].isin(["red", "orange", "yellow"])].groupby("dispute_id")["as_of"].min()
    alerted = units[units["alerted"]].set_index("dispute_id")
    assert (alerted["as_of"] == first_alert.reindex(alerted.index)).all()
    never = units[~units["alerted"]].set_index("dispute_id")
    assert (never["as_of"] == s.groupby("dispute_id")["as_of"].min().reindex(never.index)).all()
    y = er.make_labels(small_district, units[["dispute_id", "as_of"]])
    closed_escalated = store_url[1]
    other = units["dispute_id"] != closed_escalated
    assert (units.loc[other, "escalated"].to_numpy() == y[other].to_numpy()).all()
    assert units.loc[~other, "escalated"].tolist() == [1]  # the store's recorded outcome
    assert units.loc[~other, "handled"].tolist() == [True] and units.loc[other, "handled"].sum() == 0
    cat = small_district.incidents.set_index("incident_id")["category"].astype(object)
    assert (units["category"] == units["dispute_id"].map(cat)).all()


def _plant(units: pd.DataFrame, effect: float, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Give PLANTED to riskier disputes more often (confounding), then prevent a share
    ``effect`` of the escalations among them. Returns the units, who was treated and
    the outcomes without the plan (so the true effect is known exactly)."""
    rng = np.random.default_rng(seed)
    u = units.copy()
    logit = np.log(u["probability"] / (1 - u["probability"]))
    p_treat = 1 / (1 + np.exp(-(-1.0 + 1.5 * (logit - logit.mean()) / logit.std())))
    treated = rng.random(len(u)) < p_treat
    u["plan"] = np.where(treated, PLANTED, np.where(u["plan"] == PLANTED, "routine_follow_up", u["plan"]))
    before = u["escalated"].to_numpy()
    prevented = treated & (before == 1) & (rng.random(len(u)) < effect)
    u["escalated"] = np.where(prevented, 0, before)
    return u, treated, before


def _matched(u: pd.DataFrame, treated: np.ndarray) -> np.ndarray:
    """The treated disputes that have a comparison (same category and score band, another plan)."""
    stratum = u["category"].astype(str) + "|" + score_band(u["probability"].to_numpy()).astype(str)
    return treated & stratum.isin(set(stratum[~treated])).to_numpy()


def _replicates(units: pd.DataFrame, effect: float, n: int = 30) -> pd.DataFrame:
    """Plant the effect ``n`` times (seeds 0..n-1) and compare the report with the truth."""
    rows = []
    for seed in range(n):
        u, treated, before = _plant(units, effect=effect, seed=seed)
        rep = plan_effects(u, by=("overall",))
        row = rep[rep["plan"] == PLANTED].iloc[0]
        # The truth on the matched treated: what happened minus what would have happened without the plan.
        m = _matched(u, treated)
        assert row["n_matched"] == m.sum() >= 0.8 * row["n"]
        truth = float(u["escalated"].to_numpy()[m].mean() - before[m].mean())
        rows.append({"truth": truth, "effect": row["effect"], "lo": row["effect_lo"], "hi": row["effect_hi"],
                     "naive": row["naive_effect"]})
    out = pd.DataFrame(rows)
    out["covered"] = (out["lo"] <= out["truth"]) & (out["truth"] <= out["hi"])
    print(f"effect {effect}: truth {out['truth'].mean():+.3f}, matched {out['effect'].mean():+.3f} "
          f"(covered {out['covered'].mean():.0%}, interval below 0 {(out['hi'] < 0).mean():.0%}), "
          f"naive {out['naive'].mean():+.3f}")
    return out


def test_matching_recovers_a_planted_effect(units):
    u, _, _ = _plant(units, effect=0.9, seed=0)
    rep = plan_effects(u, by=("overall",))
    assert list(rep.columns) == REPORT_COLUMNS and rep.attrs["caveat"] == CAVEAT
    r = _replicates(units, effect=0.9)
    assert r["truth"].mean() < -0.05
    assert r["covered"].mean() >= 0.85                           # the interval holds the truth
    assert abs(r["effect"].mean() - r["truth"].mean()) < 0.01     # the size, without bias
    assert (r["effect"] < 0).mean() >= 0.95                       # the sign
    # Power, not correctness: how often the interval also excludes no effect depends on the
    # district's size and on the model's scores (93% with the model of issue 18's branch, 73%
    # after issue 15's refit). The issue asks for the sign and size within the interval, above.
    assert (r["hi"] < 0).mean() >= 0.6
    # Without matching the confounding hides most of the benefit.
    assert abs(r["naive"].mean() - r["truth"].mean()) > 3 * abs(r["effect"].mean() - r["truth"].mean())


def test_no_effect_planted_no_effect_found(units):
    r = _replicates(units, effect=0.0)
    assert (r["truth"] == 0).all()
    assert r["covered"].mean() >= 0.85 and abs(r["effect"].mean()) < 0.01
    assert r["naive"].mean() > 0.02  # the naive comparison blames the plan for the risk of its disputes


def test_report_by_level_and_category(units):
    rep = plan_effects(units)
    assert set(rep["group_by"]) == {"overall", "level", "category"}
    for (dim, group), g in rep.groupby(["group_by", "group"]):
        sub = units if dim == "overall" else units[units[dim] == group]
        assert g["n"].sum() == len(sub)
        assert g["escalated"].sum() == sub["escalated"].sum()
    assert ((rep["rate_lo"] <= rep["rate"]) & (rep["rate"] <= rep["rate_hi"])).all()
    text = format_plan_report(rep, units)
    assert text.index("Caveat") < text.index("By overall")
    with pytest.raises(ValueError, match="missing column"):
        plan_effects(units.drop(columns="plan"))
    with pytest.raises(ValueError, match="neither 'overall'"):
        plan_effects(units, by=("district",))


def test_cli_plans_report(tmp_path, store_url, small_district):
    from click.testing import CliRunner

    from escalation_risk.cli import main
    data = tmp_path / "data"
    small_district.write(data)
    fig = tmp_path / "plans.png"
    r = CliRunner().invoke(main, ["plans-report", "--store", store_url[0], str(data), "--figure", str(fig)],
                           env={"ESCALATION_RISK_PSEUDONYM_KEY": KEY})
    assert r.exit_code == 0, r.output
    assert "Caveat. Observational" in r.output and "By level:" in r.output
    assert fig.stat().st_size > 1000
    r = CliRunner().invoke(main, ["plans-report", "--store", store_url[0], str(data), "--format", "json"],
                           env={"ESCALATION_RISK_PSEUDONYM_KEY": KEY})
    got = json.loads(r.output)
    assert got["caveat"] == CAVEAT and {row["plan"] for row in got["rows"]} >= {"routine_follow_up"}


def test_alerts_show_lists_three_similar_past_cases(tmp_path, store_url, small_district, small_model):
    from click.testing import CliRunner

    from escalation_risk.cli import main
    data, model_dir = tmp_path / "data", tmp_path / "model"
    small_district.write(data)
    small_model.save(model_dir)
    with er.AlertStore(store_url[0]) as st:
        a = st.alerts().iloc[0]
    env = {"ESCALATION_RISK_PSEUDONYM_KEY": KEY, "ESCALATION_RISK_DATA": None}
    args = ["alerts", "show", str(a["alert_id"]), "--store", store_url[0]]
    r = CliRunner().invoke(main, args + ["--data", str(data), "--model", str(model_dir), "--format", "json"],
                           env=env)
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)["similar_cases"]
    want = er.similar_cases(small_model, small_district, a["dispute_id"], a["last_as_of"], k=3)
    assert [c["dispute_id"] for c in got] == want["dispute_id"].tolist()
    r = CliRunner().invoke(main, args + ["--data", str(data), "--model", str(model_dir)], env=env)
    assert r.exit_code == 0 and "similar past cases:" in r.output and " 3. " in r.output
    r = CliRunner().invoke(main, args, env=env)  # without the data the alert is still shown
    assert r.exit_code == 0 and "give --data DIR" in r.output


def test_cases_with_the_recorded_alerts_as_of(store_url):
    """A case's recorded alert as it stood at as_of: nothing before it was raised, its
    status from the audit trail, its outcome only once closed."""
    from escalation_risk.cli.cases import with_alerts
    did = store_url[1]  # the dispute whose alert the fixture worked and closed as escalated
    with er.AlertStore(store_url[0]) as st:
        a = st.alerts(dispute_id=did).sort_values("alert_id").iloc[0]
        never = set(st.scores()["dispute_id"]) - set(st.alerts()["dispute_id"])
    other = sorted(never)[0]
    df = pd.DataFrame({"dispute_id": [did, other]})
    before = with_alerts(df, store_url[0], a["raised_at"] - pd.Timedelta(seconds=1))
    assert before["alert_plan"].isna().all()
    with er.AlertStore(store_url[0]) as st:
        then = st.scores(dispute_id=did, as_of=a["raised_at"])["plan"].iloc[0]
    mid = with_alerts(df, store_url[0], a["raised_at"])
    assert mid["alert_plan"].iloc[0] == then and pd.isna(mid["alert_plan"].iloc[1])
    assert mid["alert_status"].iloc[0] == "raised" and mid["alert_outcome"].isna().all()
    after = with_alerts(df, store_url[0], a["closed_at"])
    assert after["alert_status"].iloc[0] == "closed" and after["alert_outcome"].iloc[0] == "affray"


def test_typical_library_with_what_the_store_recorded(store_url, small_district, small_model):
    from escalation_risk.cases import case_index, typical_cases, typical_report
    from escalation_risk.cli.cases import with_alerts
    as_of = pd.Timestamp("2025-03-31")
    lib = typical_cases(case_index(small_model, small_district), "2023-01-01", "2025-01-01", as_of=as_of)
    lib = with_alerts(lib, store_url[0], as_of)
    recorded = lib["alert_plan"].notna()
    assert recorded.any()
    assert (lib.loc[recorded, "reported_at"] <= as_of).all()
    assert "; alert: plan " in typical_report(lib)


def test_cli_plans_report_says_what_it_needs(tmp_path, small_district, small_model):
    """A store of the data's last night (the quickstart's) has no outcome yet: the error says what is needed."""
    from click.testing import CliRunner

    from escalation_risk.cli import main
    data = tmp_path / "data"
    small_district.write(data)
    env = {"ESCALATION_RISK_PSEUDONYM_KEY": KEY}
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    with er.AlertStore(empty):
        pass
    r = CliRunner().invoke(main, ["plans-report", "--store", empty, str(data)], env=env)
    assert r.exit_code == 1 and "holds no scored dispute" in r.output and "nightly" in r.output
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    night = "2025-06-30"
    with er.AlertStore(url) as st:
        st.record_night(small_model.score(small_district, night), night, small_model.version)
        n = len(st.scores())
    r = CliRunner().invoke(main, ["plans-report", "--store", url, str(data)], env=env)
    assert r.exit_code == 1, r.output
    assert "90-day horizon" in r.output and f"{n} have a horizon still open" in r.output
    assert "2025-06-30" in r.output and "Traceback" not in r.output
