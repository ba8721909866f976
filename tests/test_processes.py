"""The store and the deliverer under real concurrency: separate OS processes (tests/procs.py)
on one store, SQLite and PostgreSQL, against a webhook receiver on 127.0.0.1 that counts ids.

- two processes recording the same night, and different nights, at once;
- two deliverers at once over the same pending messages: each id arrives once;
- a night killed with SIGKILL at ten seeded random points, then re-run: the store equals a
  clean run's;
- a deliverer killed between its POST and its mark: the resend carries the same webhook-id.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
import standardwebhooks
from procs import DISTRICTS, NIGHTS, record, record_nights

from escalation_risk.alerts import AlertStore
from escalation_risk.alerts.notify import ID_HEADER, Notifier, Webhook, notifications_table

HERE = Path(__file__).parent
SRC = HERE.parent / "src"
SECRET = b"test-webhook-secret-not-for-production"
SEED = 25

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]  # real processes: minutes on a busy machine


def spawn(*args: Any) -> subprocess.Popen:
    """``python tests/procs.py ARGS`` as its own process, reading this worktree's package."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "ESCALATION_RISK_NOTIFY_SECRET": SECRET.decode()}
    return subprocess.Popen([sys.executable, str(HERE / "procs.py"), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_line(p: subprocess.Popen, expected: str, timeout: float = 120.0) -> None:
    """Read ``p``'s stdout until the line ``expected``; fail with its stderr if it dies first."""
    assert p.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if line.strip() == expected:
            return
        if not line and p.poll() is not None:
            break
    p.kill()
    raise AssertionError(f"process never said {expected!r}: {p.stderr.read() if p.stderr else ''}")


def start_together(procs: list[subprocess.Popen], go: Path) -> None:
    """Let ``procs`` go at once: each has imported, opened its store and said ``ready``."""
    for p in procs:
        wait_line(p, "ready")
    go.touch()


def finish(p: subprocess.Popen, timeout: float = 300.0) -> dict[str, Any]:
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(params=["sqlite", "postgresql"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path):
    """A factory of URLs of fresh, empty stores on one backend."""
    made = iter(range(1000))
    if request.param == "sqlite":
        return lambda: f"sqlite:///{tmp_path / f'alerts-{next(made)}.db'}"
    server = request.getfixturevalue("pg_server")
    return server.create_database


# ---------------------------------------------------------------------------
# a store's content, by what things are rather than their row numbers


_CLOCK = {"started_at", "finished_at", "applied_at", "created_at", "last_attempt_at", "delivered_at", "claimed_at",
          "replaced_at"}
_ROW_IDS = {"score_id", "run_id", "event_id", "notification_id", "replaced_id", "id", "claim"}


def natural_dump(url: str) -> dict[str, list[tuple]]:
    """Every table's rows without wall-clock times and row numbers, alerts named by
    (district, dispute, raised_at): PostgreSQL's serials skip numbers a killed transaction
    took, which changes no fact."""
    with AlertStore(url) as s, s.engine.connect() as conn:
        md = sa.MetaData()
        md.reflect(conn)
        alerts = {r.alert_id: (r.district, r.dispute_id, str(r.raised_at))
                  for r in conn.execute(sa.text("SELECT alert_id, district, dispute_id, raised_at FROM alerts"))}
        out = {}
        for name, table in md.tables.items():
            rows = []
            for r in conn.execute(sa.select(table)).mappings():
                row = {k: v for k, v in r.items() if k not in _CLOCK | _ROW_IDS}
                if "alert_id" in row and row["alert_id"] is not None:
                    row["alert_id"] = alerts[row["alert_id"]]
                if name == "notifications":
                    body = json.loads(row.pop("body"))
                    body["alert_id"] = alerts.get(body.get("alert_id"))
                    row["body"] = json.dumps(body, sort_keys=True, ensure_ascii=False)
                rows.append(tuple(sorted((k, str(v)) for k, v in row.items())))
            out[name] = sorted(rows)
    return out


# ---------------------------------------------------------------------------
# recording


def test_two_processes_record_the_same_night_once_and_different_nights_both(new_store, tmp_path):
    n, night = 300, NIGHTS[0]
    # the same night of the same district, twice at once, on a store neither has made yet
    url = new_store()
    go = tmp_path / "go-same"
    procs = [spawn("record", url, DISTRICTS[0], night.isoformat(), n, SEED, go) for _ in range(2)]
    start_together(procs, go)
    summaries = [finish(p) for p in procs]
    assert sorted(s["already_recorded"] for s in summaries) == [False, True]
    assert summaries[0]["n_scored"] == summaries[1]["n_scored"] == n
    clean = new_store()
    with AlertStore(clean) as s:
        record(s, DISTRICTS[0], night, n, SEED)
    assert natural_dump(url) == natural_dump(clean)

    # different nights at once: two districts' nights, and two nights of one district (backfill)
    go = tmp_path / "go-different"
    procs = [spawn("record", url, DISTRICTS[1], night.isoformat(), n, SEED, go),
             # the older of the two may come second: it is a backfill then
             spawn("record", url, DISTRICTS[0], NIGHTS[1].isoformat(), n, SEED, go, "backfill"),
             spawn("record", url, DISTRICTS[0], NIGHTS[2].isoformat(), n, SEED, go)]
    start_together(procs, go)
    assert not any(finish(p)["already_recorded"] for p in procs)
    with AlertStore(url) as s:
        runs = s.runs()
        assert sorted(zip(runs["district"], runs["as_of"])) == sorted(
            [(DISTRICTS[0], NIGHTS[0]), (DISTRICTS[1], NIGHTS[0]), (DISTRICTS[0], NIGHTS[1]),
             (DISTRICTS[0], NIGHTS[2])])
        assert len(s.scores()) == 4 * n
        open_ = s.alerts(status="open", district=DISTRICTS[0])
        # whichever ran first, no alert shows an older picture than the newest night's (an
        # alert a backfilled night raised after the newest one shows its own night)
        assert ((open_["last_as_of"] == NIGHTS[2]) | (open_["raised_at"] == NIGHTS[1])).all()
        assert (open_["last_as_of"] == NIGHTS[2]).any()
        # each process queued its night: none twice, and none of the first night's missing
        # (later nights' "rising" depends on which of them was recorded first: frozen as queued)
        n = Notifier(s, Webhook("http://127.0.0.1:9/x"))
        assert n.log()["key"].is_unique and n.queue_night(NIGHTS[0]) == 0
        assert {k.split(":")[1] for k in n.log()["key"]} == set(DISTRICTS)


def kill_and_rerun(new_url: Any, points: int, disputes: int) -> tuple[float, list[tuple[float, bool, int, bool]]]:
    """Record the nights cleanly on a fresh store; then, ``points`` times on another fresh
    store, SIGKILL a night process at a seeded moment of its run and re-run it. A moment is
    K nights recorded plus a fraction of the next night's time (K and the fraction seeded;
    the time per night from one uninterrupted process), counted from the process's own
    ``recorded K`` line: so the kills spread over the whole run however fast the machine
    is that minute. Returns the clean run's seconds and, per point: the moment (K plus the
    fraction), whether the process was still running, the nights it had recorded, and
    whether the store then equals the clean run's."""
    clean = new_url()
    t0 = time.perf_counter()
    record_nights(clean, SEED, disputes)
    took = time.perf_counter() - t0
    expected = natural_dump(clean)
    total = len(NIGHTS) * len(DISTRICTS)
    assert len(expected["runs"]) == total and expected["notifications"]
    whole = new_url()
    p = spawn("nights", whole, SEED, disputes)
    wait_line(p, "ready")
    t0 = time.perf_counter()
    p.communicate(timeout=120)
    per_night = (time.perf_counter() - t0) / total
    assert p.returncode == 0 and natural_dump(whole) == expected
    rng = random.Random(SEED)
    out = []
    for k, fraction in sorted((rng.randrange(total), rng.uniform(0, 0.9)) for _ in range(points)):
        url = new_url()
        p = spawn("nights", url, SEED, disputes)
        wait_line(p, f"recorded {k}" if k else "ready")
        time.sleep(fraction * per_night)
        alive = p.poll() is None
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
        with AlertStore(url) as s:
            recorded = len(s.runs())
        record_nights(url, SEED, disputes)  # the re-run
        out.append((round(k + fraction, 2), alive, recorded, natural_dump(url) == expected))
    return took, out


def test_a_night_killed_at_random_points_and_rerun_equals_a_clean_run(new_store):
    _, points = kill_and_rerun(new_store, 10, 400)
    print(f"\nkill points (nights in, alive when killed, nights recorded, store equal after the re-run): {points}")
    assert all(equal for *_, equal in points)
    # most points must land inside the run, at different places, or this proves little
    assert sum(alive for _, alive, _, _ in points) >= 6
    assert len({recorded for _, alive, recorded, _ in points if alive}) >= 3


# ---------------------------------------------------------------------------
# delivery


class CountingReceiver:
    """A webhook endpoint on 127.0.0.1 that verifies each request and counts its webhook-id.
    ``kill`` (a pid): the first request SIGKILLs that process after the body has arrived and
    before the answer, as if it died between its POST and its mark."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self.ids: Counter[str] = Counter()
        self.order: list[str] = []
        self.bad = 0
        self.kill: int | None = None
        self.lock = threading.Lock()
        verifier = standardwebhooks.Webhook(SECRET)
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    verifier.verify(body, dict(self.headers))
                    ok = True
                except standardwebhooks.webhooks.WebhookVerificationError:
                    ok = False
                with me.lock:
                    me.bad += not ok
                    wid = self.headers.get(ID_HEADER, "")
                    me.ids[wid] += 1
                    me.order.append(wid)
                    victim, me.kill = me.kill, None
                if victim is not None:
                    os.kill(victim, signal.SIGKILL)
                    time.sleep(0.2)
                if latency_s:
                    time.sleep(latency_s)
                try:
                    self.send_response(200 if ok else 401)
                    self.end_headers()
                except OSError:  # the sender was killed meanwhile
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def queue_messages(url: str, count: int) -> list[str]:
    """``count`` pending messages in the store at ``url``; returns their webhook ids."""
    with AlertStore(url) as s:
        n = Notifier(s, Webhook("http://127.0.0.1:9/queue-only"))
        day = pd.Timestamp("2025-06-30")
        n._enqueue([{"message_id": f"summary:{day + pd.Timedelta(days=i):%Y-%m-%d}", "type": "summary",
                     "day": f"{day + pd.Timedelta(days=i):%Y-%m-%d}", "open_by_level": {}, "overdue_by_owner": {},
                     "text": f"【日结日清】{i}"} for i in range(count)])
        return n.log()["webhook_id"].tolist()


def race(url: str, receiver: CountingReceiver, go: Path, deliverers: int = 2, lease: float = 600) -> list[dict]:
    procs = [spawn("deliver", url, receiver.url, lease, go) for _ in range(deliverers)]
    start_together(procs, go)
    return [finish(p) for p in procs]


def test_two_deliverers_at_once_send_each_message_once(new_store, tmp_path):
    url = new_store()
    ids = queue_messages(url, 200)
    receiver = CountingReceiver(latency_s=0.002)
    try:
        reports = race(url, receiver, tmp_path / "go")
    finally:
        receiver.close()
    assert receiver.bad == 0
    assert set(receiver.ids) == set(ids) and max(receiver.ids.values()) == 1  # 200 distinct ids, none twice
    assert sum(r["delivered"] for r in reports) == 200
    assert all(r["delivered"] > 0 for r in reports), reports  # both took part: a real race
    with AlertStore(url) as s:
        statuses = Notifier(s, Webhook(receiver.url)).log()["status"]
    assert (statuses == "delivered").all()


def test_a_deliverer_killed_between_post_and_mark_resends_under_the_same_id(new_store, tmp_path):
    url = new_store()
    ids = queue_messages(url, 5)
    receiver = CountingReceiver()
    try:
        go = tmp_path / "go"
        p = spawn("deliver", url, receiver.url, 600, go)
        wait_line(p, "ready")
        receiver.kill = p.pid
        go.touch()
        p.communicate(timeout=60)
        assert p.returncode == -signal.SIGKILL
        first = receiver.order[0]
        with AlertStore(url) as s:
            log = Notifier(s, Webhook(receiver.url)).log().set_index("webhook_id")
        assert log.loc[first, "status"] == "sending"  # claimed, posted, never marked
        assert (log.drop(index=first)["status"] == "pending").all()

        # a deliverer now sends the rest, and leaves the live claim alone (its lease of 600 s runs)
        assert race(url, receiver, tmp_path / "go2", deliverers=1)[0]["delivered"] == 4
        assert receiver.ids[first] == 1
        # once the lease has passed (0 s here), the claimed message is sent again: the same id
        assert race(url, receiver, tmp_path / "go3", deliverers=1, lease=0)[0]["delivered"] == 1
    finally:
        receiver.close()
    assert receiver.order[-1] == first and receiver.ids[first] == 2
    assert set(receiver.ids) == set(ids) and sorted(receiver.ids.values()) == [1, 1, 1, 1, 2]
    assert receiver.bad == 0
    with AlertStore(url) as s, s.engine.connect() as conn:
        assert set(conn.execute(sa.select(notifications_table.c.status)).scalars()) == {"delivered"}
