"""One night, three layouts: a district, a province of that one district, a province of three.

The same district is run as a district's folder, as the only district of a province and
as one of three districts (the two others small, sharing nobody with it): it gets the same
scores, alerts, messages, briefing sections and exit codes, and the same refusals (a stale
export, a corrected one, an older night, a busy store). Through the command line, as an
operator runs it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import KEY
from test_notify import SECRET, Receiver

from escalation_risk import AlertStore
from escalation_risk.cli import main
from escalation_risk.synth import generate_tables, write_tables

NIGHT = "2025-06-30"
CODE = "330101"
#: layout -> (folder under the fixture's root, the district's code in the store)
LAYOUTS = {"district": ("district", ""), "province of one": ("prov1", CODE), "province of three": ("prov3", CODE)}


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("layouts")
    main_district, _ = generate_tables(1200, seed=7)
    for folder in ("district", f"prov1/{CODE}", f"prov3/{CODE}"):
        write_tables(main_district, root / folder, fmt="csv")
    for code, seed in (("330102", 8), ("330103", 9)):
        write_tables(generate_tables(150, seed=seed)[0], root / "prov3" / code, fmt="csv")
    (root / "key").write_text(KEY)
    (root / "key").chmod(0o600)
    return root


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, small_model) -> Path:
    d = tmp_path_factory.mktemp("model")
    small_model.save(d)
    return d


def _nightly(root: Path, data: Path, model_dir: Path, url: str, out: Path, *extra: str, as_of: str = NIGHT):
    # --key-file after the subcommand, as an operator writes it
    args = ["nightly", "--key-file", str(root / "key"), str(data), "--model", str(model_dir), "--as-of", as_of,
            "--store", url, "--out", str(out), "--no-progress", *extra]
    # --notify needs a signing secret (at least 32 bytes), from the environment as in production
    return CliRunner().invoke(main, args, env={"ESCALATION_RISK_NOTIFY_SECRET": SECRET.decode()})


def _main_district(data: Path, code: str) -> Path:
    return data / code if code else data


def _sections(page: Path) -> dict[str, str]:
    html = page.read_text(encoding="utf-8")
    return dict(re.findall(r'<section id="([\w-]+)">(.*?)</section>', html, flags=re.S))


def _page(out: Path, code: str) -> Path:
    return out / (f"briefing-{NIGHT}-{code}.html" if code else f"briefing-{NIGHT}.html")


def test_one_night_whatever_the_layout(layouts: Path, model_dir: Path, tmp_path: Path):
    seen: dict[str, dict] = {}
    for name, (folder, code) in LAYOUTS.items():
        url = f"sqlite:///{tmp_path / name / 'alerts.db'}"
        out = tmp_path / name / "out"
        receiver = Receiver()
        try:
            r = _nightly(layouts, layouts / folder, model_dir, url, out, "--report", "--notify", receiver.url)
        finally:
            receiver.close()
        assert r.exit_code == 0, r.output
        assert f"store: sqlite:///{tmp_path / name / 'alerts.db'}" in r.output
        scores = pd.read_csv(out / f"scores-{NIGHT}.csv", dtype={"district": str})
        with AlertStore(url) as st:
            alerts = st.alerts(district=code)
            runs = st.runs()
        districts = sorted(c.name for c in (layouts / folder).iterdir() if c.is_dir()) if code else [""]
        assert sorted(runs["district"]) == districts
        if code:
            assert sorted(set(scores["district"])) == districts
            scores = scores[scores["district"] == code].drop(columns="district")
        messages = sorted((m["dispute_id"], m["level"], m["event"], m["alert_id"], m.get("district") or "")
                          for m in receiver.delivered if (m.get("district") or "") == code)
        listed = CliRunner().invoke(main, ["alerts", "list", "--store", url])
        assert listed.exit_code == 0, listed.output
        # a province store lists the district (dispute ids repeat across districts)
        assert ("district" in listed.output.splitlines()[0]) == bool(code)
        seen[name] = {
            "scores": scores.reset_index(drop=True),
            "alerts": alerts.drop(columns=["district"]).reset_index(drop=True),
            "messages": [m[:4] for m in messages],
            "sections": _sections(_page(out, code)),
            "index": (out / f"briefing-{NIGHT}.html").read_text(encoding="utf-8") if code else None,
        }
    one = seen["district"]
    assert len(one["scores"]) > 100 and len(one["alerts"]) > 0 and len(one["messages"]) > 0
    assert set(one["sections"]) >= {"counts", "new-alerts", "overdue", "heat", "governance", "drift"}
    for name in ("province of one", "province of three"):
        other = seen[name]
        pd.testing.assert_frame_equal(other["scores"], one["scores"], obj=f"{name}: scores")
        pd.testing.assert_frame_equal(other["alerts"], one["alerts"], obj=f"{name}: alerts")
        assert other["messages"] == one["messages"], name
        assert other["sections"] == one["sections"], name
        assert f'href="briefing-{NIGHT}-{CODE}.html"' in other["index"]
    assert 'href="briefing-2025-06-30-330103.html"' in seen["province of three"]["index"]

    # `nightly` on the district's own folder, with the province's store: that district's night again
    # (a province of one links as the district alone), not a lone district "" beside it
    url1 = f"sqlite:///{tmp_path / 'province of one' / 'alerts.db'}"
    again = _nightly(layouts, layouts / "prov1" / CODE, model_dir, url1, tmp_path / "prov1-again")
    assert again.exit_code == 0, again.output
    with AlertStore(url1) as st:
        assert sorted(st.runs()["district"]) == [CODE]
        pd.testing.assert_frame_equal(st.alerts(district=CODE).drop(columns=["district"]).reset_index(drop=True),
                                      seen["province of one"]["alerts"])

    # `briefing` on a district folder of a province reads that district's night in the province store
    url3 = f"sqlite:///{tmp_path / 'province of three' / 'alerts.db'}"
    nightly_out = tmp_path / "province of three" / "out"
    for code in (CODE, "330102"):
        again = CliRunner().invoke(main, ["--key-file", str(layouts / "key"), "briefing", str(layouts / "prov3" / code),
                                          "--store", url3, "--as-of", NIGHT, "--model", str(model_dir),
                                          "--out", str(tmp_path / "again")])
        assert again.exit_code == 0, again.output
        assert _sections(_page(tmp_path / "again", code)) == _sections(_page(nightly_out, code))
    assert _sections(_page(nightly_out, "330102"))["counts"] != _sections(_page(nightly_out, CODE))["counts"]


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_the_same_refusals_whatever_the_layout(layout: str, layouts: Path, model_dir: Path, tmp_path: Path):
    folder, code = LAYOUTS[layout]
    data = tmp_path / "data"
    shutil.copytree(layouts / folder, data)
    db = tmp_path / "store" / "alerts.db"
    url = f"sqlite:///{db}"
    out = tmp_path / "out"

    def night(*extra: str, as_of: str = NIGHT):
        r = _nightly(layouts, data, model_dir, url, out, *extra, as_of=as_of)
        assert "Traceback" not in r.output
        return r

    # the first night: recorded; its messages cannot be sent (nobody listens): exit 4
    first = night("--notify", "http://127.0.0.1:9/hook", "--notify-timeout", "0.2")
    assert first.exit_code == 4, first.output
    assert f"created a new alert store: sqlite:///{db}" in first.output
    again = night()
    assert again.exit_code == 0 and "already recorded" in again.output

    stale = night(as_of="2030-01-01")
    assert stale.exit_code == 1 and "--allow-stale" in stale.output

    incidents = _main_district(data, code) / "incidents.csv"
    inc = pd.read_csv(incidents, dtype=str)
    inc.loc[3, "amount"] = "123456"  # a corrected export
    inc.to_csv(incidents, index=False)
    corrected = night()
    assert corrected.exit_code == 1 and "different input" in corrected.output and "--replace" in corrected.output
    assert night("--replace").exit_code == 0
    with AlertStore(url) as st:
        replaced = st.replaced_runs()
        assert (replaced["district"] == code).sum() == 1

    older = night(as_of="2025-06-20")
    assert older.exit_code == 1 and "--backfill" in older.output

    with AlertStore(url) as st, st.recording_lock(district=code):
        busy = night("--lock-timeout", "0", as_of="2025-07-01")
    assert busy.exit_code == 1
    assert busy.output.strip().splitlines()[-1].startswith("error: another night is being recorded")
    with AlertStore(url) as st:
        assert st.last_night(code) == pd.Timestamp(NIGHT) + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)

    inc.loc[5, "category"] = "alien_abduction"  # a bad row: recorded, and the scheduler told (3)
    inc.to_csv(incidents, index=False)
    quarantined = night(as_of="2025-07-01")
    assert quarantined.exit_code == 3, quarantined.output
    assert (out / "quarantine-2025-07-01.csv").exists()


def test_every_data_command_takes_a_province(layouts: Path, model_dir: Path):
    prov, key = layouts / "prov3", ["--key-file", str(layouts / "key")]
    run = CliRunner().invoke
    every = run(main, ["validate", str(prov), *key])
    assert every.exit_code == 0, every.output
    assert [ln for ln in every.output.splitlines() if ln.startswith("== district")] == \
        [f"== district {c} ==" for c in ("330101", "330102", "330103")]
    one = run(main, ["validate", str(prov), "--district", "330102", *key])
    assert one.exit_code == 0 and "330101" not in one.output and "== district 330102 ==" in one.output
    unknown = run(main, ["validate", str(prov), "--district", "339999", *key])
    assert unknown.exit_code == 2 and "339999" in unknown.output
    gov = run(main, ["governance", str(prov), "--format", "csv", *key])
    assert gov.exit_code == 0, gov.output
    table = pd.read_csv(__import__("io").StringIO(gov.output), dtype={"district": str})
    assert sorted(set(table["district"])) == ["330101", "330102", "330103"]
    drift = run(main, ["drift", str(prov), "--district", "330103", "--model", str(model_dir), "--from", "2025-01-01",
                       "--to", NIGHT, "--format", "json", *key])
    assert drift.exit_code == 0, drift.output
    assert [d["district"] for d in __import__("json").loads(drift.output)] == ["330103"]


def test_store_urls_are_resolved_and_shown(tmp_path: Path, monkeypatch):
    from escalation_risk.cli.errors import check_store_url, resolve_store_url
    monkeypatch.chdir(tmp_path)
    assert resolve_store_url("sqlite:///var/er/alerts.db") == f"sqlite:///{tmp_path}/var/er/alerts.db"
    assert resolve_store_url("sqlite://") == "sqlite://"
    assert check_store_url(None, None, "postgres://er:pw@db.local:5432/er") == \
        "postgresql+psycopg://er:pw@db.local:5432/er"
    r = CliRunner().invoke(main, ["alerts", "list", "--store", "sqlite:///var/er/alerts.db"])
    assert r.exit_code == 1 and f"{tmp_path}/var/er/alerts.db" in r.output  # the path meant, in full


# --------------------------------------------------------------------------- all or nothing

THIRD = "330103"


@pytest.fixture(scope="module")
def small_province(tmp_path_factory) -> Path:
    """A province of three small districts (sharing nobody), with its key file."""
    root = tmp_path_factory.mktemp("small-province")
    for code, seed in (("330101", 7), ("330102", 8), (THIRD, 9)):
        write_tables(generate_tables(150, seed=seed)[0], root / "prov" / code, fmt="csv")
    (root / "key").write_text(KEY)
    (root / "key").chmod(0o600)
    return root


def test_a_province_night_is_recorded_whole_or_not_at_all(small_province: Path, model_dir: Path,
                                                           store_url: str, tmp_path: Path):
    """A refusal of any district records no district, and names the one refused."""
    from escalation_risk.alerts import NightConflictError
    from escalation_risk.nightly import run_night
    prov = tmp_path / "prov"
    shutil.copytree(small_province / "prov", prov)
    key = small_province / "key"

    def province(as_of: str = NIGHT, **kw):
        return run_night(prov, model_dir, as_of, store=store_url, out_dir=None, pseudonym_key=key,
                         check_drift=False, **kw)

    def alone(as_of: str, **kw):  # the third district's night run on its own beforehand
        return run_night(prov / THIRD, model_dir, as_of, store=store_url, out_dir=None, pseudonym_key=key,
                         check_drift=False, district=THIRD, **kw)

    def recorded() -> tuple[list[tuple[str, str]], dict[str, int], dict[str, int]]:
        with AlertStore(store_url) as st:
            runs = st.runs()
            codes = ("330101", "330102", THIRD)
            return (sorted(zip(runs["district"], runs["as_of"].dt.strftime("%Y-%m-%d"))),
                    {c: len(st.scores(district=c)) for c in codes}, {c: len(st.alerts(district=c)) for c in codes})

    # the third district's night was recorded alone; then its export was corrected
    alone(NIGHT)
    before = recorded()
    assert before[0] == [(THIRD, NIGHT)] and before[1][THIRD] > 0
    incidents = prov / THIRD / "incidents.csv"
    inc = pd.read_csv(incidents, dtype=str)
    inc.loc[3, "amount"] = "123456"
    inc.to_csv(incidents, index=False)
    with pytest.raises(NightConflictError, match=f"^district {THIRD}: night .*different input.*--replace"):
        province()
    assert recorded() == before  # nothing in the first two districts, nothing changed in the third
    # the operator's view: exit 1, the district named, no traceback
    r = _nightly(small_province, prov, model_dir, store_url, tmp_path / "out", "--no-progress")
    assert r.exit_code == 1 and f"district {THIRD}: night" in r.output and "Traceback" not in r.output
    assert recorded() == before

    replaced = province(replace=True)
    assert sorted(replaced.summaries) == ["330101", "330102", THIRD]
    runs, scores, _ = recorded()
    assert runs == [(c, NIGHT) for c in ("330101", "330102", THIRD)]
    assert all(n > 0 for n in scores.values())
    with AlertStore(store_url) as st:
        assert st.replaced_runs()["district"].tolist() == [THIRD]

    # a later night recorded for the third district alone: the province's next night is older there
    alone("2025-07-02", allow_stale=True)
    before = recorded()
    with pytest.raises(NightConflictError, match=f"^district {THIRD}: night 2025-07-01.*older.*--backfill"):
        province("2025-07-01", allow_stale=True)
    assert recorded() == before
    assert [n for n in before[0] if n[1] == "2025-07-01"] == []
    backfilled = province("2025-07-01", allow_stale=True, backfill=True)
    assert sorted(backfilled.summaries) == ["330101", "330102", THIRD]
    assert [d for d, n in recorded()[0] if n == "2025-07-01"] == ["330101", "330102", THIRD]
