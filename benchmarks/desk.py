#!/usr/bin/env python
"""The desk and its JSON API under load (issue 27), against uvicorn as a real process.

    python benchmarks/desk.py --persons 100000 --alerts 10000 [--write]

1. Generates a district of ``--persons`` (the package's generator, seed 0), writes it
   as Parquet, trains a model on a ``--train-persons`` district of the same seed (the
   model's size, not the history's, is what a call's cost follows) and records one
   night of ``--alerts`` alerts (disputes of the district, levels in the nightly mix)
   in a SQLite store, with one admin, one worker (the grid with the most alerts) and
   one service token.
2. Starts ``escalation-risk serve`` in its own process.
3. ``POST /api/v1/score`` from ``--clients`` threads (one keep-alive connection each),
   disputes the history never saw (open disputes re-sent under fresh ids, as
   benchmarks/run.py does): p50, p99, requests/s; against ``Scorer.score_dispute`` on
   the same inputs in this process, sequentially and from the same number of threads.
4. The desk's pages, signed in: an alert's page (first view, when its similar cases
   are found, and a revisit), the worker's and the admin's "my alerts".

Prints one table and, with ``--write``, puts it into BENCHMARKS.md (its own section).
Not part of the test suite. The machine is shared: each run records ``uptime``.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import ROOT, git_rev, machine, score_requests, uptime  # noqa: E402  (sets the sample key)

import escalation_risk as er  # noqa: E402
from escalation_risk.alerts import AlertStore  # noqa: E402
from escalation_risk.desk import Directory  # noqa: E402
from escalation_risk.desk.process import served  # noqa: E402
from escalation_risk.synth import generate_district  # noqa: E402

NIGHT = pd.Timestamp("2025-06-30")
MIX = {"red": 0.1, "orange": 0.3, "yellow": 0.6}
BEGIN, END = "<!-- desk -->", "<!-- /desk -->"


def _plain(d: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in d.items()}


def _pcts(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {"n": len(ms), "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max())}


def _threads(n: int, work, items: list) -> tuple[list[float], float]:
    """Run ``work(client_index, item)`` over ``items`` split among ``n`` threads; (latencies, wall s)."""
    lat: list[list[float]] = [[] for _ in range(n)]
    start = threading.Barrier(n + 1)

    def run(i: int) -> None:
        start.wait()
        for item in items[i::n]:
            t0 = time.perf_counter()
            work(i, item)
            lat[i].append(time.perf_counter() - t0)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return [x for part in lat for x in part], time.perf_counter() - t0


def _store(ds: er.Dataset, url: str, n_alerts: int, model_version: str, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    disputes = ds.incidents.loc[ds.incidents["kind"] == "dispute", "incident_id"].to_numpy(dtype=object)
    ids = rng.choice(disputes, size=min(n_alerts, len(disputes)), replace=False)
    levels = rng.choice(list(MIX), size=len(ids), p=list(MIX.values()))
    scores = pd.DataFrame({
        "dispute_id": ids, "probability": rng.uniform(0.2, 0.95, len(ids)), "level": levels, "trend": "new",
        "reasons": [["两次以上报警", "一方有暴力前科", "调解失败"]] * len(ids),
        "plan": "neighbour_mediation"})
    with AlertStore(url) as store:
        store.record_night(scores, NIGHT, model_version)
        d = Directory(store)
        places = ds.incidents[["incident_id", "place_id"]].merge(ds.places[["place_id", "grid_id"]])
        grid = places.set_index("incident_id").loc[ids, "grid_id"].value_counts().index[0]
        d.add_user("bench-admin", "admin", "bench-password-1")
        d.add_user("bench-worker", "worker", "bench-password-2", grids=[str(grid)])
        token = d.add_token("bench", ["score", "alerts"])
        alert_ids = store.alerts()["alert_id"].to_numpy()
    return {"token": token, "alert_ids": alert_ids, "grid": str(grid)}


def _timed(client, paths: list[str]) -> list[float]:
    """Seconds per GET of each path, one after another."""
    out = []
    for path in paths:
        t = time.perf_counter()
        r = client.get(path)
        out.append(time.perf_counter() - t)
        if r.status_code != 200:
            raise RuntimeError(f"GET {path}: {r.status_code}")
    return out


def _login(client, name: str, password: str) -> None:
    page = client.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"username": name, "password": password, "csrf_token": csrf})
    assert r.status_code in (200, 303) and "/login" not in str(r.url), "sign-in failed"


def run(args) -> dict:
    import httpx

    res: dict = {"machine": machine(), "uptime_start": uptime(), "git": git_rev(), "args": vars(args)}
    tmp = Path(tempfile.mkdtemp(prefix="desk-bench-"))
    t0 = time.perf_counter()
    ds = generate_district(args.persons, seed=args.seed)
    ds.write(tmp / "data", fmt="parquet")
    small = generate_district(args.train_persons, seed=args.seed)
    model = er.train(small, cutoff="2025-01-01", seed=args.seed)
    model.save(tmp / "model")
    url = f"sqlite:///{tmp / 'alerts.db'}"
    st = _store(ds, url, args.alerts, model.version, args.seed)
    res["setup_s"] = time.perf_counter() - t0
    reqs = [(_plain(d), [_plain(p) for p in ps]) for d, ps in
            score_requests(ds, NIGHT, args.requests + args.warmup, args.seed)]

    env = {"ESCALATION_RISK_DESK_SECRET": secrets.token_hex(32)}
    t0 = time.perf_counter()
    with served(url, tmp / "model", tmp / "data", tmp / "server.log", env=env, timeout=3600, warm=True) as base:
        res["server_warm_s"] = time.perf_counter() - t0

        # ------------------------------------------------------------ score: in process
        scorer = er.Scorer(model, ds)
        for d, ps in reqs[:args.warmup]:
            scorer.score_dispute(d, ps, as_of=NIGHT.isoformat())
        timed = reqs[args.warmup:]
        lat = []
        for d, ps in timed:
            t = time.perf_counter()
            scorer.score_dispute(d, ps, as_of=NIGHT.isoformat())
            lat.append(time.perf_counter() - t)
        res["inproc_seq"] = {**_pcts(lat), "rps": len(lat) / sum(lat)}
        lat, wall = _threads(args.clients, lambda i, r: scorer.score_dispute(r[0], r[1], as_of=NIGHT.isoformat()),
                             timed)
        res["inproc_threads"] = {**_pcts(lat), "rps": len(lat) / wall}

        # ------------------------------------------------------------ score: over HTTP
        headers = {"Authorization": f"Bearer {st['token']}", "Content-Type": "application/json"}
        bodies = [json.dumps({"dispute": d, "parties": ps, "as_of": NIGHT.isoformat()}) for d, ps in reqs]
        clients = [httpx.Client(base_url=base, headers=headers, timeout=60) for _ in range(args.clients)]
        for i, b in enumerate(bodies[:args.warmup]):
            r = clients[i % args.clients].post("/api/v1/score", content=b)
            assert r.status_code == 200, r.text

        inside: list[float] = []  # score_dispute's own time in the server (its Server-Timing header)

        def post(i: int, body: str) -> None:
            r = clients[i].post("/api/v1/score", content=body)
            if r.status_code != 200:
                raise RuntimeError(r.text)
            inside.append(float(r.headers["server-timing"].split("dur=")[1]) / 1e3)
        lat, wall = _threads(args.clients, post, bodies[args.warmup:])
        res["http"] = {**_pcts(lat), "rps": len(lat) / wall}
        res["http_inside"] = {**_pcts(inside), "rps": float("nan")}
        inside.clear()
        lat, wall = _threads(1, post, bodies[args.warmup:args.warmup + len(bodies) // 4])
        res["http_one"] = {**_pcts(lat), "rps": len(lat) / wall}
        res["http_one_inside"] = {**_pcts(inside), "rps": float("nan")}
        for c in clients:
            c.close()

        # ------------------------------------------------------------ the desk's pages
        rng = np.random.default_rng(args.seed)
        with httpx.Client(base_url=base, timeout=60, follow_redirects=True) as admin:
            _login(admin, "bench-admin", "bench-password-1")
            ids = rng.choice(st["alert_ids"], size=min(args.pages, len(st["alert_ids"])), replace=False)
            pages = [f"/alerts/{a}" for a in ids]
            res["alert_first"] = _pcts(_timed(admin, pages))
            res["alert_again"] = _pcts(_timed(admin, pages))
            res["list_admin"] = _pcts(_timed(admin, ["/alerts"] * args.lists))
        with httpx.Client(base_url=base, timeout=60, follow_redirects=True) as worker:
            _login(worker, "bench-worker", "bench-password-2")
            res["list_worker"] = _pcts(_timed(worker, ["/alerts"] * args.lists))
            res["worker_open"] = int(re.search(r'id="count-open">(\d+)<', worker.get("/alerts").text).group(1))
    res["uptime_end"] = uptime()
    return res


def render(res: dict) -> str:
    a, m = res["args"], res["machine"]
    day = time.strftime("%Y-%m-%d")

    def row(label: str, r: dict, rps: bool = True) -> str:
        return (f"| {label} | {r['n']:,} | {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | "
                + (f"{r['rps']:.0f} |" if rps else "– |"))
    lines = [
        f"### Desk and API, {a['persons']:,} persons, {a['alerts']:,} alerts (seed {a['seed']}, {day})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB; Python {m['python']}; git {res['git']}. "
        f"Model trained on a {a['train_persons']:,}-person district of the same seed; the history is the "
        f"{a['persons']:,}-person district. Server: one uvicorn process (`escalation-risk serve`, SQLite store), "
        f"warm (case index and governance index built) "
        f"{res['server_warm_s']:.0f} s after start; clients in the benchmark's process on the same 2 cores.",
        "",
        "| what | calls | p50 ms | p99 ms | max ms | req/s |",
        "|---|---|---|---|---|---|",
        row("`score_dispute` in process, sequential", res["inproc_seq"]),
        row(f"`score_dispute` in process, {a['clients']} threads", res["inproc_threads"]),
        row(f"`POST /api/v1/score`, {a['clients']} concurrent clients", res["http"]),
        row("… of which `score_dispute` inside the server (Server-Timing)", res["http_inside"], False),
        row("`POST /api/v1/score`, 1 client", res["http_one"]),
        row("… of which `score_dispute` inside the server (Server-Timing)", res["http_one_inside"], False),
        row(f"alert page `/alerts/{{id}}`, first view (similar cases found), {a['alerts']:,} alerts",
            res["alert_first"], False),
        row("alert page, revisit (similar cases cached)", res["alert_again"], False),
        row(f"`/alerts`, admin (all {a['alerts']:,} open; 100 a page)", res["list_admin"], False),
        row(f"`/alerts`, a worker ({res['worker_open']:,} open in their grid)", res["list_worker"], False),
        "",
        f"`uptime` at start: {res['uptime_start']}; at end: {res['uptime_end']}.",
    ]
    return "\n".join(lines)


def write(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{section}\n{END}\n"
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", lambda _m: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## The desk and its API (issue 27, `benchmarks/desk.py`)\n\n" + block
    path.write_text(text, encoding="utf-8")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--train-persons", type=int, default=20_000)
    ap.add_argument("--alerts", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=2000, help="timed score calls (all clients together)")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--pages", type=int, default=200, help="alert pages viewed (each twice)")
    ap.add_argument("--lists", type=int, default=50, help="'my alerts' pages per user")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", action="store_true", help="put the table into BENCHMARKS.md")
    args = ap.parse_args(argv)
    res = run(args)
    section = render(res)
    print(section)
    if args.write:
        write(ROOT / "BENCHMARKS.md", section)


if __name__ == "__main__":
    main()
