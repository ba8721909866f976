#!/usr/bin/env python
"""The desk and its JSON API under load (issue 27), against uvicorn as a real process.

    python benchmarks/desk.py --persons 100000 --alerts 10000 [--site DIR] [--write]

1. A site: a district of ``--persons`` (the package's generator, seed 0) as Parquet, a
   model trained on a ``--train-persons`` district of the same seed (a call's cost follows
   the model's size and the history's, not the training set's), one night of ``--alerts``
   alerts in a SQLite store (levels in the nightly mix) with one admin, one worker (the
   grid with the most alerts) and one service token, and the night's case index. With
   ``--site DIR`` the site is kept there and reused by the next run of the same sizes.
2. For each ``--score-processes`` value, ``escalation-risk serve --case-index`` in its own
   process, warm, then ``--rounds`` rounds, each timing the same ``--chunk`` requests (open
   disputes of the history re-sent under fresh ids, as benchmarks/run.py does) four ways,
   interleaved so that the shared machine's load weighs on all alike (the order turns each
   round): ``Scorer.score_dispute`` in this process from ``--clients`` threads and from one,
   and ``POST /api/v1/score`` from ``--clients`` concurrent clients (a keep-alive
   ``http.client`` connection each, in threads of this process) and from one. Same
   concurrency both ways: the comparison is N threads calling the library against N
   clients calling the server. CPU seconds per call: this process's for in-process
   calls; for HTTP, the server's (and its scoring children's) and the clients'.
3. The desk's pages, signed in, one after another: an alert's page (first view, when its
   similar cases are found, and a revisit), the worker's and the admin's "my alerts".

Prints one table and, with ``--write``, puts it into BENCHMARKS.md (its own section).
Not part of the test suite. The machine is shared: each run records ``uptime``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
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
from escalation_risk import collector  # noqa: E402
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

    failed: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            for item in items[i::n]:
                t0 = time.perf_counter()
                work(i, item)
                lat[i].append(time.perf_counter() - t0)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            failed.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    if failed:
        raise failed[0]
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


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its live children (the scoring processes)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            f = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or int(f[1]) == pid:
            total += (int(f[11]) + int(f[12])) / tick
    return total


def _rss_of(pid: int) -> float:
    """Peak RSS in MB of ``pid`` plus the current RSS of its children (shared pages counted in each)."""
    def field(p: str, name: str) -> int:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(name + ":"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0
    kids = [d.parent.name for d in Path("/proc").glob("[0-9]*/stat")
            if _ppid(d) == pid]
    return (field(str(pid), "VmHWM") + sum(field(k, "VmRSS") for k in kids)) / 1024


def _ppid(stat: Path) -> int:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def prepare(args, site: Path) -> dict:
    """The site (data, model, store, case index), made unless ``site`` holds one of these sizes."""
    from escalation_risk.cases import build_case_index
    from escalation_risk.dataset import mark_synthetic

    wanted = {k: getattr(args, k) for k in ("persons", "train_persons", "alerts", "seed")}
    meta = site / "site.json"
    if meta.exists():
        info = json.loads(meta.read_text())
        if info.get("sizes") == wanted:
            return info
        raise SystemExit(f"{site} holds a site of other sizes ({info.get('sizes')}): give another --site")
    site.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    ds = generate_district(args.persons, seed=args.seed)
    ds.write(site / "data", fmt="parquet")
    mark_synthetic(site / "data")  # read with the public sample key: only a synthetic folder may be
    model = er.train(generate_district(args.train_persons, seed=args.seed), cutoff="2025-01-01", seed=args.seed)
    model.save(site / "model")
    st = _store(ds, f"sqlite:///{site / 'alerts.db'}", args.alerts, model.version, args.seed)
    build_case_index(model, ds).save(site / "cases")
    info = {"sizes": wanted, "token": st["token"], "grid": st["grid"],
            "setup_s": time.perf_counter() - t0, "setup_cpu_s": time.process_time() - c0}
    meta.write_text(json.dumps(info))
    return info


class _Http:
    """One keep-alive connection per client (``http.client``: the lightest client at hand,
    so the clients' own CPU takes as little as it can from the server's two cores)."""

    def __init__(self, base: str, n: int, token: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.conns = [http.client.HTTPConnection(host, int(port), timeout=120) for _ in range(n)]
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.inside: list[float] = []

    def reconnect(self) -> None:
        """Fresh connections, made outside the timed calls (the server closes one idle for 5 s,
        as it is while the in-process calls run)."""
        for c in self.conns:
            c.close()
            c.connect()

    def post(self, i: int, body: bytes) -> None:
        c = self.conns[i]
        c.request("POST", "/api/v1/score", body=body, headers=self.headers)
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"{r.status}: {data[:300]!r}")
        self.inside.append(float(r.getheader("server-timing").split("dur=")[1]) / 1e3)

    def close(self) -> None:
        for c in self.conns:
            c.close()


def _compare(scorer, base: str, pid: int, token: str, reqs: list, bodies: list[bytes], args) -> dict:
    """The four ways, interleaved round by round (see the module's note)."""
    n = args.clients
    as_of = NIGHT.isoformat()
    many, one = _Http(base, n, token), _Http(base, 1, token)
    for i in range(args.warmup):  # every connection and every scoring child warm
        many.post(i % n, bodies[i])
        one.post(0, bodies[i])
        scorer.score_dispute(reqs[i][0], reqs[i][1], as_of=as_of)
    lat: dict[str, list[float]] = {k: [] for k in ("in_n", "in_1", "http_n", "http_1")}
    wall = dict.fromkeys(lat, 0.0)
    cpu = dict.fromkeys(("in_n", "in_1", "http_n_server", "http_n_client", "http_1_server", "http_1_client"), 0.0)
    inside: dict[str, list[float]] = {"http_n": [], "http_1": []}

    def in_proc(idx: list[int], threads: int, key: str) -> None:
        c0 = time.process_time()
        got, w = _threads(threads, lambda _i, k: scorer.score_dispute(reqs[k][0], reqs[k][1], as_of=as_of), idx)
        cpu[key] += time.process_time() - c0
        lat[key] += got
        wall[key] += w

    def over_http(idx: list[int], client: _Http, threads: int, key: str) -> None:
        client.reconnect()
        c0, s0 = time.process_time(), _cpu_of(pid)
        client.inside.clear()
        got, w = _threads(threads, lambda i, k: client.post(i, bodies[k]), idx)
        cpu[key + "_client"] += time.process_time() - c0
        cpu[key + "_server"] += _cpu_of(pid) - s0
        lat[key] += got
        wall[key] += w
        inside[key] += client.inside

    start = args.warmup
    for r in range(args.rounds):
        chunk = list(range(start, start + args.chunk))
        small = chunk[:max(1, args.chunk // 4)]
        start += args.chunk
        steps = [(in_proc, (chunk, n, "in_n")), (over_http, (chunk, many, n, "http_n")),
                 (in_proc, (small, 1, "in_1")), (over_http, (small, one, 1, "http_1"))]
        for step, step_args in (steps if r % 2 == 0 else steps[::-1]):
            step(*step_args)
    many.close()
    one.close()
    out = {k: {**_pcts(v), "rps": len(v) / wall[k]} for k, v in lat.items()}
    out["inside_n"] = _pcts(inside["http_n"])
    out["inside_1"] = _pcts(inside["http_1"])
    for k in ("in_n", "in_1"):
        out[k]["cpu_ms"] = 1e3 * cpu[k] / len(lat[k])
    for k in ("http_n", "http_1"):
        out[k]["cpu_ms"] = 1e3 * cpu[k + "_server"] / len(lat[k])
        out[k]["client_cpu_ms"] = 1e3 * cpu[k + "_client"] / len(lat[k])
    return out


def _pages(base: str, st: dict, alert_ids: np.ndarray, args) -> dict:
    import httpx

    res: dict = {}
    rng = np.random.default_rng(args.seed)
    with httpx.Client(base_url=base, timeout=60, follow_redirects=True) as admin:
        _login(admin, "bench-admin", "bench-password-1")
        ids = rng.choice(alert_ids, size=min(args.pages, len(alert_ids)), replace=False)
        pages = [f"/alerts/{a}" for a in ids]
        res["alert_first"] = _pcts(_timed(admin, pages))
        res["alert_again"] = _pcts(_timed(admin, pages))
        res["list_admin"] = _pcts(_timed(admin, ["/alerts"] * args.lists))
    with httpx.Client(base_url=base, timeout=60, follow_redirects=True) as worker:
        _login(worker, "bench-worker", "bench-password-2")
        res["list_worker"] = _pcts(_timed(worker, ["/alerts"] * args.lists))
        res["worker_open"] = int(re.search(r'id="count-open">(\d+)<', worker.get("/alerts").text).group(1))
    return res


def run(args) -> dict:
    from escalation_risk.cases import load_case_index, use_case_index
    from escalation_risk.dataset import load_dataset
    from escalation_risk.model import load_model

    res: dict = {"machine": machine(), "uptime_start": uptime(), "git": git_rev(), "args": vars(args)}
    site = Path(args.site) if args.site else Path(tempfile.mkdtemp(prefix="desk-bench-"))
    info = prepare(args, site)
    res["setup_s"] = info["setup_s"]
    # The in-process scorer is loaded as the server loads its own: from the same files.
    ds = load_dataset(site / "data")
    model = load_model(site / "model")
    scorer = er.Scorer(model, ds)
    use_case_index(scorer.history, load_case_index(site / "cases", model))
    # The server freezes its loaded heap (serve: a full collection would walk the whole
    # history); the same here, so both sides pay the collector alike.
    collector.freeze_loaded()
    need = args.warmup + args.rounds * args.chunk
    reqs = [(_plain(d), [_plain(p) for p in ps]) for d, ps in score_requests(ds, NIGHT, need, args.seed)]
    bodies = [json.dumps({"dispute": d, "parties": ps, "as_of": NIGHT.isoformat()}).encode() for d, ps in reqs]
    url = f"sqlite:///{site / 'alerts.db'}"
    with AlertStore(url) as store:
        alert_ids = store.alerts()["alert_id"].to_numpy()
    env = {"ESCALATION_RISK_DESK_SECRET": secrets.token_hex(32)}
    res["runs"] = []
    for procs in args.score_processes:
        t0 = time.perf_counter()
        extra = ["--case-index", str(site / "cases"), "--score-processes", str(procs)]
        with served(url, site / "model", site / "data", site / f"server-{procs}.log", env=env, timeout=3600,
                    warm=True, args=extra) as base:
            run_res: dict = {"score_processes": procs, "server_warm_s": time.perf_counter() - t0,
                             "uptime": uptime()}
            run_res.update(_compare(scorer, base, base.pid, info["token"], reqs, bodies, args))
            if procs == args.score_processes[0]:
                run_res["pages"] = _pages(base, info, alert_ids, args)
            run_res["server_rss_mb"] = _rss_of(base.pid)
            run_res["uptime_end"] = uptime()
        res["runs"].append(run_res)
    res["uptime_end"] = uptime()
    return res


def render(res: dict) -> str:
    a, m = res["args"], res["machine"]
    day = time.strftime("%Y-%m-%d")
    n = a["clients"]

    def row(label: str, r: dict, rps: bool = True, cpu: str = "–") -> str:
        return (f"| {label} | {r['n']:,} | {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | "
                + (f"{r['rps']:.0f} |" if rps else "– |") + f" {cpu} |")
    lines = [
        f"### Desk and API, {a['persons']:,} persons, {a['alerts']:,} alerts (seed {a['seed']}, {day})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB, shared with other engineers' work; "
        f"Python {m['python']}; git {res['git']}. Model trained on a {a['train_persons']:,}-person district "
        f"of the same seed; the history is the {a['persons']:,}-person district. Server: one uvicorn process "
        f"(`escalation-risk serve --case-index`, SQLite store), warm; clients in the benchmark's process on "
        f"the same 2 cores. In-process and HTTP calls interleaved in {a['rounds']} rounds of {a['chunk']} "
        f"requests ({a['chunk'] // 4} for one client), the same requests both ways.",
        "",
    ]
    for run in res["runs"]:
        p = run["score_processes"]
        how = (f"`--score-processes {p}` ({p} forked scorers)" if p else
               "`--score-processes 0` (scores in the server's event loop)")
        lines += [
            f"**Server with {how}**; server peak RSS {run['server_rss_mb']:,.0f} MB (children's RSS added, "
            f"shared pages counted in each); `uptime` before: {run['uptime']}; after: {run['uptime_end']}.",
            "",
            "| what | calls | p50 ms | p99 ms | max ms | req/s | CPU ms a call |",
            "|---|---|---|---|---|---|---|",
            row(f"`score_dispute` in process, {n} threads", run["in_n"], cpu=f"{run['in_n']['cpu_ms']:.1f}"),
            row(f"`POST /api/v1/score`, {n} concurrent clients", run["http_n"],
                cpu=f"{run['http_n']['cpu_ms']:.1f} server + {run['http_n']['client_cpu_ms']:.1f} client"),
            row("… of which `score_dispute` inside the server (Server-Timing)", run["inside_n"], False),
            row("`score_dispute` in process, 1 thread", run["in_1"], cpu=f"{run['in_1']['cpu_ms']:.1f}"),
            row("`POST /api/v1/score`, 1 client", run["http_1"],
                cpu=f"{run['http_1']['cpu_ms']:.1f} server + {run['http_1']['client_cpu_ms']:.1f} client"),
            row("… of which `score_dispute` inside the server (Server-Timing)", run["inside_1"], False),
            "",
        ]
        if "pages" in run:
            pg = run["pages"]
            lines += [
                "| page (one client, signed in) | views | p50 ms | p99 ms | max ms |",
                "|---|---|---|---|---|",
                *[f"| {label} | {r['n']:,} | {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} |" for label, r in (
                    (f"alert page `/alerts/{{id}}`, first view (similar cases found), {a['alerts']:,} alerts",
                     pg["alert_first"]),
                    ("alert page, revisit (similar cases cached)", pg["alert_again"]),
                    (f"`/alerts`, admin (all {a['alerts']:,} open; 100 a page)", pg["list_admin"]),
                    (f"`/alerts`, a worker ({pg['worker_open']:,} open in their grid)", pg["list_worker"]))],
                "",
            ]
    lines.append(f"`uptime` at start: {res['uptime_start']}; at end: {res['uptime_end']}.")
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
    ap.add_argument("--rounds", type=int, default=8, help="interleaved rounds (see the module's note)")
    ap.add_argument("--chunk", type=int, default=100, help="requests a round, all clients together")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--score-processes", type=int, nargs="+", default=[0, 2],
                    help="one server run for each value of serve --score-processes")
    ap.add_argument("--site", help="keep the site (data, model, store, case index) here and reuse it")
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
