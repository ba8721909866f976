"""The host's time zone changes nothing: the CLI and the store under TZ=UTC and TZ=Asia/Shanghai
give the same records (the library's clock is $ESCALATION_RISK_TIMEZONE, never the host's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Runs in a fresh interpreter, so that TZ is read at start-up as a server would.
SCRIPT = r"""
import json, sys, time
import pandas as pd
from click.testing import CliRunner
from escalation_risk import AlertStore, clock
from escalation_risk.cli import main

url = sys.argv[1]
scores = pd.DataFrame({"dispute_id": ["d1", "d2", "d3"], "probability": [0.9, 0.5, 0.2],
                       "level": ["red", "orange", "yellow"], "trend": "new", "delta": None,
                       "reasons": [["threats"], ["repeat"], []], "plan": "routine_follow_up"})
with AlertStore(url) as st:
    st.record_night(scores, "2025-06-30", "m1")
run = CliRunner().invoke
steps = [["alerts", "assign", "1", "--to", "wang", "--by", "chief", "--at", "2025-07-01T08:00"],
         ["alerts", "update", "1", "--status", "in_progress", "--by", "wang", "--at", "2025-07-01T09:30+00:00"],
         ["alerts", "update", "2", "--status", "in_progress", "--by", "li", "--at", "2025-07-02"]]
for s in steps:
    r = run(main, s + ["--store", url])
    assert r.exit_code == 0, r.output
before = clock.now()
r = run(main, ["alerts", "assign", "3", "--to", "zhao", "--by", "chief", "--store", url])  # no --at: now
assert r.exit_code == 0, r.output
out = {}
for name, args in {"list": ["alerts", "list", "--format", "json"],
                   "overdue": ["alerts", "overdue", "--now", "2025-07-02T08:00", "--format", "json"],
                   "show1": ["alerts", "show", "1", "--format", "json"],
                   "show2": ["alerts", "show", "2", "--format", "json"]}.items():
    r = run(main, args + ["--store", url])
    assert r.exit_code == 0, r.output
    out[name] = json.loads(r.stdout)
with AlertStore(url) as st:
    ev = st.events(3)
    at = pd.Timestamp(ev["at"].iloc[-1])
out["now_recorded_in_zone"] = bool(before.floor("s") <= at <= clock.now())
for rec in out["list"]:  # alert 3 was touched now: its times differ by the seconds between runs
    if rec["alert_id"] == 3:
        rec.pop("updated_at", None)
        rec.pop("status_at", None)
print(json.dumps(out, sort_keys=True))
"""


def _run(tz: str, tmp_path: Path) -> dict:
    env = {**os.environ, "TZ": tz, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("ESCALATION_RISK_TIMEZONE", None)  # the default zone, Asia/Shanghai
    env.pop("ESCALATION_RISK_STORE", None)
    url = f"sqlite:///{tmp_path / ('alerts-' + tz.replace('/', '-') + '.db')}"
    p = subprocess.run([sys.executable, "-c", SCRIPT, url], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_cli_and_store_give_the_same_records_whatever_the_host_zone(tmp_path):
    utc, shanghai = _run("UTC", tmp_path), _run("Asia/Shanghai", tmp_path)
    assert utc == shanghai
    assert utc["now_recorded_in_zone"] is True
    # The records themselves follow the rules: the night is the end of its day, a red
    # alert of that night is due by the end of the next day, an offset is converted.
    one = utc["show1"]
    assert one["raised_at"] == "2025-06-30T23:59:59.999999"
    assert one["due_at"] == "2025-07-01T23:59:59.999999"
    assert [e["at"] for e in one["events"]][-1] == "2025-07-01T17:30:00"   # 09:30 UTC in Shanghai
    assert utc["show2"]["events"][-1]["at"] == "2025-07-02T23:59:59.999999"  # --at a date: its end
    assert [r["dispute_id"] for r in utc["overdue"]] == ["d1"]  # red: due by the end of 07-01
    assert {r["dispute_id"] for r in utc["list"]} == {"d1", "d2", "d3"}


@pytest.mark.parametrize("tz", ["UTC", "Asia/Shanghai"])
def test_now_is_the_configured_zone(tz, monkeypatch):
    """In-process: clock.now() does not move with the host's TZ."""
    import time

    from escalation_risk import clock
    if not hasattr(time, "tzset"):
        pytest.fail("time.tzset is needed to change the host zone in-process (POSIX)")
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        monkeypatch.delenv("ESCALATION_RISK_TIMEZONE", raising=False)
        import datetime as dt
        from zoneinfo import ZoneInfo
        want = dt.datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
        assert abs((clock.now() - want).total_seconds()) < 5
    finally:
        monkeypatch.undo()
        time.tzset()
