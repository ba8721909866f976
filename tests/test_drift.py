"""Drift: PSI known answers, the report on a trained model, the command line."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from escalation_risk.drift import EPSILON, drift_report, feature_drift, night_drift, psi, psi_from_counts

HALF_SHIFT = 0.25 * math.log(2) + 0.25 * math.log(1.5)   # 50/50 -> 25/75, by hand: 0.2747


def test_psi_known_answers():
    assert psi_from_counts([50, 50], [25, 75]) == pytest.approx(HALF_SHIFT)
    assert psi_from_counts([50, 50], [25, 75]) == pytest.approx(0.274653, abs=1e-6)
    assert psi_from_counts([10, 20, 30], [1, 2, 3]) == 0.0               # shares, not counts
    # An empty bin counts as EPSILON: 100/0 against 50/50.
    assert psi_from_counts([100, 0], [50, 50]) == pytest.approx(
        (0.5 - 1) * math.log(0.5) + (0.5 - EPSILON) * math.log(0.5 / EPSILON))
    with pytest.raises(ValueError, match="same bins"):
        psi_from_counts([1, 2], [1, 2, 3])


def test_psi_numeric_bins_at_reference_deciles():
    ref = np.arange(100.0)                       # ten bins of 10% each
    assert psi(ref, ref) == 0.0
    low = np.tile(np.arange(50.0), 2)            # all in the lower five bins: 20% each
    expected = 5 * (0.2 - 0.1) * math.log(2) + 5 * (0.1 - EPSILON) * math.log(0.1 / EPSILON)
    assert psi(ref, low) == pytest.approx(expected)
    # Missing values are a bin of their own.
    half_missing = np.concatenate([ref[::2], np.full(50, np.nan)])
    expected = 10 * (0.05 - 0.1) * math.log(0.5) + (0.5 - EPSILON) * math.log(0.5 / EPSILON)
    assert psi(ref, half_missing) == pytest.approx(expected)
    assert psi(["a"] * 50 + ["b"] * 50, ["a"] * 25 + ["b"] * 75, categorical=True) == pytest.approx(HALF_SHIFT)


def test_feature_drift_readings():
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"same": rng.normal(size=2000), "shifted": rng.normal(size=2000),
                        "gaps": rng.normal(size=2000), "month": rng.integers(1, 7, 2000)})
    cur = pd.DataFrame({"same": rng.normal(size=2000), "shifted": rng.normal(loc=1.5, size=2000),
                        "gaps": np.where(rng.random(2000) < 0.2, np.nan, rng.normal(size=2000)),
                        "month": rng.integers(7, 13, 2000)})
    f = feature_drift(ref, cur, ["same", "shifted", "gaps", "month"], seasonal=["month"]).set_index("feature")
    assert f.loc["same", "reading"] == "stable" and f.loc["same", "psi"] < 0.02
    assert f.loc["shifted", "reading"] == "moved" and f.loc["shifted", "psi"] > 0.25
    assert f.loc["gaps", "missing_change"] == pytest.approx(cur["gaps"].isna().mean())
    assert f.loc["gaps", "reading"] == "moved"
    assert f.loc["month", "reading"] == "seasonal" and f.loc["month", "psi"] > 1
    # A looser threshold: the shifted feature no longer moved (its PSI is known from above).
    loose = feature_drift(ref, cur, ["shifted"], threshold=f.loc["shifted", "psi"] + 0.01).set_index("feature")
    assert loose.loc["shifted", "reading"] == "moderate"


def test_report_same_window_is_stable(small_district, small_model):
    w = small_model.manifest["training"]["periods"]["validation_as_of"]
    rep = drift_report(small_model, small_district, start=w[0], end=w[1])
    assert (rep.features["psi"] == 0).all()
    assert rep.verdict.startswith("stable") and rep.moved == []
    assert rep.score["psi"] == 0.0
    assert rep.calibration is not None and rep.calibration["n"] > 0     # the horizon has passed there
    assert 0 <= rep.calibration["observed"] <= 1


def test_report_names_a_moved_feature(small_district, small_model):
    from escalation_risk import Dataset
    inc = small_district.incidents.copy()
    late = inc["reported_at"] >= pd.Timestamp("2024-12-01")
    inc.loc[late, "amount"] = inc.loc[late, "amount"].fillna(10.0) * 1000.0
    tables = {**small_district.tables(), "incidents": inc}
    ds = Dataset.from_frames(pseudonymised=True, **tables)
    rep = drift_report(small_model, ds, start="2025-05-01", end="2025-06-30")
    assert "log_amount" in rep.moved
    assert rep.verdict.startswith(f"retrain: {len(rep.moved)} feature(s) moved")
    row = rep.features.set_index("feature").loc["log_amount"]
    assert row["psi"] > 0.25
    assert rep.calibration is None or rep.calibration["n"] < rep.n_recent   # the last 90 days are unlabelled
    assert "verdict: retrain" in str(rep)
    night = night_drift(small_model, ds, "2025-06-30")
    assert "log_amount" in night.moved


def test_drift_cli(small_district, small_model, tmp_path):
    from conftest import KEY

    from escalation_risk.cli import main
    data, model = tmp_path / "data", tmp_path / "model"
    small_district.write(data)
    small_model.save(model)
    runner = CliRunner(env={"ESCALATION_RISK_PSEUDONYM_KEY": KEY})
    res = runner.invoke(main, ["drift", str(data), "--model", str(model), "--from", "2025-01-01",
                               "--to", "2025-06-30", "--format", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert {"features", "score", "calibration", "verdict"} <= set(out)
    assert len(out["features"]) == len(small_model.feature_names)
    res = runner.invoke(main, ["drift", str(data), "--model", str(model), "--from", "2025-01-01", "--to", "2025-06-30"])
    assert res.exit_code == 0 and "verdict: " in res.output
    res = runner.invoke(main, ["drift", str(data), "--model", str(model), "--from", "soon", "--to", "2025-06-30"])
    assert res.exit_code == 2 and "--from" in res.output


def test_nightly_warns_when_features_drift(small_district, small_model, tmp_path, caplog):
    from escalation_risk import Dataset, run_night
    inc = small_district.incidents.copy()
    late = inc["reported_at"] >= pd.Timestamp("2024-12-01")
    inc.loc[late, "amount"] = inc.loc[late, "amount"].fillna(10.0) * 1000.0
    ds = Dataset.from_frames(pseudonymised=True, **{**small_district.tables(), "incidents": inc})
    with caplog.at_level("WARNING", logger="escalation_risk.drift"):
        rep = run_night(ds, small_model, "2025-06-30", store="sqlite://", out_dir=None)
    assert rep.drift is not None and "log_amount" in rep.drift.moved
    assert any("drift on 2025-06-30: retrain" in r.getMessage() for r in caplog.records)
    assert "drift: retrain" in str(rep)
    assert run_night(ds, small_model, "2025-06-30", store="sqlite://", out_dir=None, check_drift=False).drift is None


def test_one_psi_for_the_drift_command_and_the_plots():
    """The plots' drift table and the drift command read the same PSI over the same bins."""
    from escalation_risk import plots
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"count": rng.poisson(1.0, 2000).astype(float), "x": rng.normal(0, 1, 2000)})
    cur = pd.DataFrame({"count": rng.poisson(1.6, 1500).astype(float), "x": rng.normal(0.4, 1, 1500)})
    cur.loc[:200, "x"] = np.nan
    table = plots.drift_table(ref, cur).set_index("feature")
    cmd = feature_drift(ref, cur, ["count", "x"]).set_index("feature")
    for f in ("count", "x"):
        assert table.loc[f, "psi"] == pytest.approx(cmd.loc[f, "psi"], rel=1e-12)
        assert table.loc[f, "psi"] == pytest.approx(psi(ref[f], cur[f]), rel=1e-12)
    assert cmd.loc["x", "psi"] > 0.1
