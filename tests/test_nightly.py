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
    assert first.summary.new_alerts == sum(first.summary.by_level[lv] for lv in ("red", "orange", "yellow"))
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
    import escalation_risk.alerts.recording as store_mod  # where record_night looks it up

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
    r = runner.invoke(main, base + ["--store", f"sqlite:///{tmp_path / 'a.db'}",
                                    "--thresholds", "red=1,orange=1,yellow=1"])
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


# ----------------------------------------------------------------------------- issue 14: safe to run in production

def test_a_date_means_the_end_of_that_day(tmp_path, small_district, small_model):
    from escalation_risk.nightly import resolve_night
    night = resolve_night(NIGHT)
    assert night == pd.Timestamp("2025-06-30 23:59:59.999999")
    assert resolve_night("2025-06-30T18:00") == pd.Timestamp("2025-06-30 18:00")
    inc = small_district.incidents
    today = inc[(inc["kind"] == "dispute") & (inc["reported_at"].dt.normalize() == pd.Timestamp(NIGHT))]
    assert len(today) > 0, "the sample should have disputes reported on the night itself"
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    report = run_night(small_district, small_model, NIGHT, store=url, out_dir=tmp_path / "out")
    assert set(today["incident_id"]) <= set(report.scores["dispute_id"])  # reported that day: scored
    assert report.summary.overdue == 0  # a red alert raised tonight is due tonight, not overdue already
    written = pd.read_csv(report.files["scores"])
    assert set(written["as_of"]) == {"2025-06-30T23:59:59.999999"}
    with AlertStore(url) as st:
        assert st.runs()["as_of"].iloc[0] == night
        assert st.last_night() == night


def test_a_stale_export_is_refused(tmp_path, small_district, small_model):
    from escalation_risk.nightly import StaleDataError
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    with pytest.raises(StaleDataError, match="days after the newest record.*--allow-stale"):
        run_night(small_district, small_model, "2030-01-01", store=url, out_dir=None)
    with AlertStore(url) as st:
        assert st.last_night() is None
    run_night(small_district, small_model, "2025-07-05", store=url, out_dir=None)  # inside the 7-day margin
    late = run_night(small_district, small_model, "2025-08-01", store=url, out_dir=None, allow_stale=True)
    assert late.summary.n_scored > 0


def test_cli_corrected_export_replace_backfill_and_exit_codes(tmp_path, data_dir, model_dir):
    import shutil
    runner = CliRunner()
    data = tmp_path / "data"
    shutil.copytree(data_dir, data)
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    base = ["nightly", str(data), "--model", str(model_dir), "--store", url, "--out", str(tmp_path / "out"),
            "--no-progress"]
    assert runner.invoke(main, base + ["--as-of", NIGHT]).exit_code == 0
    same = runner.invoke(main, base + ["--as-of", NIGHT])
    assert same.exit_code == 0 and "already recorded" in same.output
    inc = pd.read_csv(data / "incidents.csv", dtype=str)
    inc.loc[3, "amount"] = "123456"  # a corrected export
    inc.to_csv(data / "incidents.csv", index=False)
    changed = runner.invoke(main, base + ["--as-of", NIGHT])
    assert changed.exit_code == 1 and "different input" in changed.output and "--replace" in changed.output
    assert "Traceback" not in changed.output
    replaced = runner.invoke(main, base + ["--as-of", NIGHT, "--replace"])
    assert replaced.exit_code == 0, replaced.output
    with AlertStore(url) as st:
        assert len(st.replaced_runs()) == 1 and len(st.runs()) == 1
    older = runner.invoke(main, base + ["--as-of", "2025-06-20"])
    assert older.exit_code == 1 and "--backfill" in older.output
    assert runner.invoke(main, base + ["--as-of", "2025-06-20", "--backfill"]).exit_code == 0
    # A bad row: the night is recorded, and the exit code tells the scheduler (3).
    inc.loc[5, "category"] = "alien_abduction"
    inc.loc[5, "description"] = "张三 身份证 11010519491231002X 电话 13812345678"
    inc.to_csv(data / "incidents.csv", index=False)
    q = runner.invoke(main, base + ["--as-of", "2025-07-01"])
    assert q.exit_code == 3, q.output
    rejected = (tmp_path / "out" / "rejected-2025-07-01" / "incidents.csv").read_text()
    assert "description" not in rejected and "13812345678" not in rejected and "11010519491231002X" not in rejected


def test_cli_errors_not_tracebacks(tmp_path, data_dir, model_dir):
    runner = CliRunner()
    run = ["nightly", str(data_dir), "--model", str(model_dir), "--out", str(tmp_path / "o"), "--no-progress"]
    bad_url = runner.invoke(main, run + ["--as-of", NIGHT, "--store", "alerts.db"])
    assert bad_url.exit_code == 2 and "not a database URL" in bad_url.output
    unknown_db = runner.invoke(main, run + ["--as-of", NIGHT, "--store", "oracle2://x/y"])
    assert unknown_db.exit_code == 2 and "unknown database" in unknown_db.output
    no_driver = runner.invoke(main, run + ["--as-of", NIGHT, "--store", "postgresql+psycopg2://u@localhost/db"])
    assert no_driver.exit_code == 1 and "escalation-risk[postgres]" in no_driver.output
    bad_date = runner.invoke(main, run + ["--as-of", "30/06/2025x", "--store", f"sqlite:///{tmp_path / 'a.db'}"])
    assert bad_date.exit_code == 2 and "--as-of" in bad_date.output and "30/06/2025x" in bad_date.output
    missing = tmp_path / "nowhere" / "alerts.db"
    listed = runner.invoke(main, ["alerts", "list", "--store", f"sqlite:///{missing}"])
    assert listed.exit_code == 1 and "does not exist" in listed.output
    assert not missing.parent.exists()  # nothing created
    bad_cutoff = runner.invoke(main, ["train", str(data_dir), "--cutoff", "soon", "--out", str(tmp_path / "m")])
    assert bad_cutoff.exit_code == 2 and "--cutoff" in bad_cutoff.output
    for r in (bad_url, unknown_db, no_driver, bad_date, listed, bad_cutoff):
        assert "Traceback" not in r.output


def test_keygen_and_no_key(tmp_path, small_district):
    runner = CliRunner()
    key = tmp_path / "district.key"
    r = runner.invoke(main, ["keygen", str(key)])
    assert r.exit_code == 0 and (key.stat().st_mode & 0o777) == 0o600
    again = runner.invoke(main, ["keygen", str(key)])
    assert again.exit_code == 1 and "never overwritten" in again.output
    from escalation_risk.synth import generate_tables, write_tables
    tables, _ = generate_tables(300, seed=1)
    write_tables(tables, tmp_path / "raw", fmt="csv")
    no_key = runner.invoke(main, ["validate", str(tmp_path / "raw")])
    assert no_key.exit_code == 1 and "keygen" in no_key.output and "Traceback" not in no_key.output
    ok = runner.invoke(main, ["--key-file", str(key), "validate", str(tmp_path / "raw")])
    assert ok.exit_code == 0, ok.output


def test_a_night_made_with_another_pseudonym_key_is_refused_by_name(tmp_path, small_district, small_model):
    """The night passes its key's fingerprint to the store: ids made with another key would
    split every person's history, so the store refuses them by name, never hinting --replace."""
    import dataclasses

    from escalation_risk.alerts import StoreKeyError
    assert small_district.key_fingerprint  # loaded with a key: the night knows which
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    run_night(small_district, small_model, "2025-06-29", store=url, out_dir=None, check_drift=False)
    other = dataclasses.replace(small_district, key_fingerprint="0" * 64)
    with pytest.raises(StoreKeyError, match="another pseudonym key") as refused:
        run_night(other, small_model, NIGHT, store=url, out_dir=None, check_drift=False)
    assert "replace" not in str(refused.value)
    with AlertStore(url) as st:
        assert len(st.runs()) == 1
