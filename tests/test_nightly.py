"""The nightly job: idempotent, all-or-nothing, quarantines bad rows and goes on."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from escalation_risk import AlertStore, run_night
from escalation_risk.cli import main

NIGHT = "2025-06-30"


def _dump(url: str) -> dict[str, pd.DataFrame]:
    eng = sa.create_engine(url)
    with eng.connect() as c:
        names = sa.inspect(c).get_table_names()
        out = {n: pd.read_sql_table(n, c) for n in names}
    eng.dispose()
    return out


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        pd.testing.assert_frame_equal(a[k], b[k], obj=k)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, small_model):
    d = tmp_path_factory.mktemp("model")
    small_model.save(d)
    return d


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, small_district):
    d = tmp_path_factory.mktemp("data")
    small_district.write(d, fmt="csv")
    return d


def test_night_is_idempotent(tmp_path, small_district, small_model):
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    first = run_night(small_district, small_model, NIGHT, store=url, out_dir=tmp_path / "out")
    assert first.summary.n_scored == len(first.scores) > 0
    assert sum(first.summary.by_level.values()) == first.summary.n_scored
    assert first.summary.new_alerts == sum(first.summary.by_level[l] for l in ("red", "orange", "yellow"))
    before = _dump(url)
    scores_file = (tmp_path / "out" / f"scores-{NIGHT}.csv").read_bytes()
    again = run_night(small_district, small_model, NIGHT, store=url, out_dir=tmp_path / "out")
    assert again.summary.already_recorded
    _same(before, _dump(url))
    assert (tmp_path / "out" / f"scores-{NIGHT}.csv").read_bytes() == scores_file


def test_second_night_updates_not_duplicates(tmp_path, small_district, small_model):
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    run_night(small_district, small_model, "2025-06-16", store=url, out_dir=None)
    second = run_night(small_district, small_model, NIGHT, store=url, out_dir=None)
    with AlertStore(url) as st:
        alerts = st.alerts()
    assert alerts["dispute_id"].is_unique
    assert (second.scores["trend"] != "new").any()
    assert set(second.scores["trend"]) <= {"new", "rising", "steady", "falling"}


def test_crash_mid_night_leaves_store_as_it_was(tmp_path, small_district, small_model, monkeypatch):
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    run_night(small_district, small_model, "2025-06-16", store=url, out_dir=None)
    before = _dump(url)
    import escalation_risk.alerts.store as store_mod

    def boom(*args, **kwargs):
        raise RuntimeError("disk full (injected)")
    monkeypatch.setattr(store_mod, "_apply_alerts", boom)
    with pytest.raises(RuntimeError, match="injected"):
        run_night(small_district, small_model, NIGHT, store=url, out_dir=None)
    _same(before, _dump(url))
    monkeypatch.undo()
    done = run_night(small_district, small_model, NIGHT, store=url, out_dir=None)
    assert not done.summary.already_recorded   # the failed night left no trace


def test_bad_rows_are_quarantined_and_the_night_goes_on(tmp_path, data_dir, model_dir):
    import shutil
    data = tmp_path / "data"
    shutil.copytree(data_dir, data)
    inc = pd.read_csv(data / "incidents.csv", dtype=str)
    inc.loc[3, "category"] = "alien_abduction"
    inc.loc[5, "reported_at"] = "not a date"
    inc.to_csv(data / "incidents.csv", index=False)
    report = run_night(data, model_dir, NIGHT, store=f"sqlite:///{tmp_path / 'a.db'}", out_dir=tmp_path / "out")
    q = pd.read_csv(report.files["quarantine"])
    assert {(3, "category"), (5, "reported_at")} <= set(zip(q.query("table == 'incidents'")["row"], q["column"]))
    assert report.quarantined_rows >= 2
    assert (tmp_path / "out" / f"rejected-{NIGHT}" / "incidents.csv").exists()
    assert report.summary.n_scored > 0


def test_cli_end_to_end(tmp_path, data_dir, model_dir):
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    args = ["nightly", str(data_dir), "--model", str(model_dir), "--as-of", NIGHT, "--store", url,
            "--out", str(tmp_path / "out"), "--no-progress"]
    r = runner.invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "red" in r.output and "scores:" in r.output
    r2 = runner.invoke(main, args)
    assert r2.exit_code == 0
    listed = runner.invoke(main, ["alerts", "list", "--store", url, "--format", "csv"])
    assert listed.exit_code == 0 and "dispute_id" in listed.output
    first = pd.read_csv(tmp_path / "out" / f"scores-{NIGHT}.csv")
    alert_id = int(pd.read_csv(__import__("io").StringIO(listed.output))["alert_id"].iloc[0])
    ok = runner.invoke(main, ["alerts", "assign", str(alert_id), "--to", "mediator-7", "--by", "chief",
                              "--store", url])
    assert ok.exit_code == 0, ok.output
    illegal = runner.invoke(main, ["alerts", "close", str(alert_id), "--by", "chief", "--outcome", "x",
                                   "--store", url])
    assert illegal.exit_code == 1
    assert len(first) > 0


def test_cli_exit_codes(tmp_path, data_dir, model_dir):
    runner = CliRunner()
    bad_args = runner.invoke(main, ["nightly", str(data_dir), "--model", str(model_dir), "--as-of", "someday"])
    assert bad_args.exit_code == 2
    no_model = runner.invoke(main, ["nightly", str(data_dir), "--model", str(tmp_path / "nope"), "--as-of", NIGHT,
                                    "--store", f"sqlite:///{tmp_path / 'a.db'}", "--out", str(tmp_path / "o")])
    assert no_model.exit_code == 1 and "error" in no_model.output


def test_cli_threshold_override(tmp_path, data_dir, model_dir, small_model):
    """Every written level follows the thresholds given on the command line, and those
    thresholds level at least a tenth of the disputes differently from the model's own:
    a run that ignored the override would fail here."""
    from escalation_risk.response import assign_levels

    runner = CliRunner()
    base = ["nightly", str(data_dir), "--model", str(model_dir), "--as-of", NIGHT, "--no-progress",
            "--out", str(tmp_path / "out")]
    r = runner.invoke(main, base + ["--store", f"sqlite:///{tmp_path / 'a.db'}", "--thresholds", "red=1,orange=1,yellow=1"])
    assert r.exit_code == 0, r.output
    p = pd.read_csv(tmp_path / "out" / f"scores-{NIGHT}.csv")["probability"].to_numpy()
    # Thresholds that put about 60% / 40% / 20% of this night's disputes at or above each
    # level: far from the model's 10% budget.
    yellow, orange, red = (float(v) for v in pd.Series(p).quantile([0.4, 0.6, 0.8]))
    override = {"red": red, "orange": orange, "yellow": yellow}
    r = runner.invoke(main, base + ["--store", f"sqlite:///{tmp_path / 'b.db'}",
                                    "--thresholds", ",".join(f"{k}={v!r}" for k, v in override.items())])
    assert r.exit_code == 0, r.output
    scores = pd.read_csv(tmp_path / "out" / f"scores-{NIGHT}.csv")
    assert (scores["level"].to_numpy() == assign_levels(scores["probability"].to_numpy(), override)).all()
    assert (assign_levels(scores["probability"].to_numpy(), small_model.thresholds) != scores["level"]).mean() > 0.1
    bad = runner.invoke(main, base + ["--store", f"sqlite:///{tmp_path / 'c.db'}", "--thresholds", "red=0.1"])
    assert bad.exit_code == 2
