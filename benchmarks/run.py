#!/usr/bin/env python
"""Benchmarks at district and province scale: time and memory of each stage as a user meets it.

    python benchmarks/run.py --persons 100000                 # `make bench`
    python benchmarks/run.py --persons 1000000 --skip-train   # province scale
    python benchmarks/run.py --province                       # 3, 10, 20 districts, local engine vs Spark, and train

Generates a district with the package's own generator, writes it as Parquet to a
temporary folder, then times each stage (wall seconds and peak RSS of that stage)
and prints one table, which is also written into BENCHMARKS.md (one section per
``--persons``, replaced when the same size is run again).

Peak RSS of a stage: a background thread samples VmRSS from /proc/self/status
every 20 ms and keeps the maximum; because a long C call holding the GIL can hide
a short spike from the thread, the stage's peak is also raised to VmHWM whenever
the process high-water mark grew during the stage (then VmHWM *is* the stage's
peak). The nightly job runs in a fresh child process (as a cron job would), so its
peak is its own, not the benchmark's accumulated state.

Not part of the test suite. No dependency beyond the package's own.
"""

from __future__ import annotations

import cProfile
import datetime as _dt
import gc
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
# Synthetic districts only: the committed sample key, public on purpose (child processes inherit it).
os.environ.setdefault("ESCALATION_RISK_PSEUDONYM_KEY_FILE", str(HERE.parent / "data" / "sample" / "SAMPLE_KEY"))
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout even without `pip install -e`

import escalation_risk as er  # noqa: E402
from escalation_risk import graph as er_graph  # noqa: E402
from escalation_risk import linking as er_linking  # noqa: E402
from escalation_risk import normalize as er_normalize  # noqa: E402
from escalation_risk.briefing import write_briefing  # noqa: E402
from escalation_risk.dataset import mark_synthetic  # noqa: E402
from escalation_risk.features import history_index  # noqa: E402
from escalation_risk.governance import governance_index  # noqa: E402
from escalation_risk.model import open_points, report_points  # noqa: E402
from escalation_risk.response import ALERT_LEVELS, assign_levels  # noqa: E402
from escalation_risk.synth import generate_district, generate_tables, write_tables  # noqa: E402

MB = 1024 * 1024


# --------------------------------------------------------------------------- memory

def _status_kb(field: str, path: str = "/proc/self/status") -> int:
    """A kB field of a /proc file (0 when the file or field is not there: a process gone)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class _Sampler:
    """A daemon thread calling ``_sample()`` every ``interval`` seconds until :meth:`stop`;
    ``cpu_s`` is the thread's own CPU time (the measuring is in the night's process time)."""

    def __init__(self, interval: float):
        self.interval = interval
        self.cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self.cpu_s = time.thread_time()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class RssSampler(_Sampler):
    """Max VmRSS over a window, sampled by a daemon thread every ``interval`` seconds."""

    def __init__(self, interval: float = 0.02):
        self._peak = 0
        self._lock = threading.Lock()
        super().__init__(interval)

    def _sample(self) -> None:
        rss = _status_kb("VmRSS")
        with self._lock:
            if rss > self._peak:
                self._peak = rss

    def reset(self) -> int:
        rss = _status_kb("VmRSS")
        with self._lock:
            self._peak = rss
        return rss

    def peak(self) -> int:
        rss = _status_kb("VmRSS")
        with self._lock:
            self._peak = max(self._peak, rss)
            return self._peak


def _descendants(pid: int) -> list[int]:
    """This process's children, grandchildren, ... (Linux: /proc/PID/task/TID/children)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def _pss_kb(pid: int) -> int:
    return _status_kb("Pss", f"/proc/{pid}/smaps_rollup")


class TreeSampler(_Sampler):
    """Max over time of the memory of this process and its forked workers together: the
    sum of their proportional set sizes (a page shared copy-on-write by two processes
    counts half in each), sampled every ``interval`` seconds by a daemon thread.

    Reading a process's PSS walks its page tables (~10 ms of kernel time per 2.4 GB
    mapped, more on a loaded machine): sampled five times a second through a whole 1M
    night it cost the night's process 10 s of CPU or more, on the night's two cores. So
    PSS is read only while workers run, once a second; alone, the process counts its RSS
    (cheap, and an upper bound of its PSS), every ``interval`` seconds. What the sampling
    still costs is reported (``measure_cpu_s``)."""

    def __init__(self, interval: float = 0.2, pss_interval: float = 1.0):
        self.peak_kb = 0
        self.peak_self_kb = 0  # this process's part of the peak
        self.peak_at = 0.0  # seconds after the start
        self.max_workers = 0
        self.pss_samples = 0
        self.peak_parts_kb: list[int] = []  # at the peak: this process's, then each worker's (oldest first)
        self._pss_interval = pss_interval
        self._last_pss = -1e9
        self._t0 = time.perf_counter()
        self._me = os.getpid()
        super().__init__(interval)

    def _sample(self) -> None:
        kids = _descendants(self._me)
        now = time.perf_counter()
        if kids:
            if now - self._last_pss < self._pss_interval:
                return
            self._last_pss = now
            self.pss_samples += 1
            mine = _pss_kb(self._me)
            parts = [mine] + [_pss_kb(k) for k in sorted(kids)]
            total = sum(parts)
        else:
            mine = total = _status_kb("VmRSS")
            parts = [mine]
        if total > self.peak_kb:
            self.peak_kb, self.peak_self_kb, self.peak_at = total, mine, now - self._t0
            self.peak_parts_kb = parts
        self.max_workers = max(self.max_workers, len(kids))


# --------------------------------------------------------------------------- stages

_ROWS: list[dict] = []  # every finished stage, also reachable when a run fails


class Bench:
    def __init__(self, profile_dir: Path | None, profile_stages: set[str]):
        self.rows: list[dict] = _ROWS
        self.sampler = RssSampler()
        self.profile_dir = profile_dir
        self.profile_stages = profile_stages

    @contextmanager
    def stage(self, key: str, label: str, target_s: float | None = None):
        """Time a stage; the body may set ``info["notes"]`` and ``info[...]``."""
        info: dict = {"stage": label, "key": key, "notes": "", "target_s": target_s}
        gc.collect()
        hwm0 = _status_kb("VmHWM")
        info["rss_start_mb"] = self.sampler.reset() / 1024
        prof = None
        if self.profile_dir is not None and (key in self.profile_stages or "all" in self.profile_stages):
            prof = cProfile.Profile()
        print(f"  … {label}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        try:
            yield info
        finally:
            if prof:
                prof.disable()
            info["seconds"] = time.perf_counter() - t0
            peak = self.sampler.peak()
            hwm1 = _status_kb("VmHWM")
            if hwm1 > hwm0:
                peak = max(peak, hwm1)
            info["peak_mb"] = peak / 1024
            if prof:
                self.profile_dir.mkdir(parents=True, exist_ok=True)
                prof.dump_stats(str(self.profile_dir / f"{key}.prof"))
            self.rows.append(info)
            print(f"    {info['seconds']:8.2f} s  {info['peak_mb']:8.0f} MB  {info['notes']}", file=sys.stderr,
                  flush=True)


def _rate(n: int, s: float) -> str:
    return f"{n / s:,.0f} rows/s" if s > 0 else "n/a"


# --------------------------------------------------------------------------- nightly child

def nightly_child(data: str, model: str, night: str, store: str, out: str, prof: str = "") -> None:
    """Run one night in this (fresh) process and print a JSON line with time and memory."""
    sampler = RssSampler()
    tree = TreeSampler()
    rss0 = sampler.reset()
    load0 = os.getloadavg()
    profiler = cProfile.Profile(time.process_time) if prof else None  # CPU time: the machine is shared
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    sys0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    t0, c0 = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    report = er.run_night(data, model, night, store=store, out_dir=out)
    cpu = time.process_time() - c0
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_workers = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    # The kernel's share (page faults: huge-page compaction, mmap/munmap of large arrays).
    sys_self = resource.getrusage(resource.RUSAGE_SELF).ru_stime - sys0
    sys_workers = kids1.ru_stime - kids0.ru_stime
    tree.stop()
    sampler.stop()
    if profiler:
        profiler.disable()
    wall = time.perf_counter() - t0
    if profiler:
        profiler.dump_stats(prof)
    peak = max(sampler.peak(), _status_kb("VmHWM"))
    s = report.summary
    print("NIGHTLY_JSON " + json.dumps({
        "seconds": wall, "cpu_seconds": cpu, "cpu_workers_seconds": round(cpu_workers, 2),
        "sys_seconds": round(sys_self, 2), "sys_workers_seconds": round(sys_workers, 2),
        "peak_mb": peak / 1024, "tree_pss_peak_mb": round(tree.peak_kb / 1024),
        "tree_peak_self_mb": round(tree.peak_self_kb / 1024), "tree_peak_at_s": round(tree.peak_at, 1),
        "tree_peak_parts_mb": [round(k / 1024) for k in tree.peak_parts_kb],
        "workers": tree.max_workers, "measure_cpu_s": round(tree.cpu_s + sampler.cpu_s, 2),
        "pss_samples": tree.pss_samples,
        "rss_start_mb": rss0 / 1024, "loadavg_start": load0, "loadavg_end": os.getloadavg(),
        "parts": {k: round(v, 2) for k, v in report.seconds.items()},
        "cpu_parts": {k: round(v, 2) for k, v in report.cpu_seconds.items()},
        "hwm_mb_after": {k: round(v) for k, v in report.peak_rss_mb.items()},
        "rss_mb_after": {k: round(v) for k, v in report.rss_mb.items()},
        "n_scored": s.n_scored, "new_alerts": s.new_alerts, "by_level": s.by_level,
    }))


# --------------------------------------------------------------------------- machine

def machine() -> dict:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) / MB
    except OSError:
        pass
    import lightgbm
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {"cpu": cpu, "cores": cores, "ram_gb": round(mem, 1), "python": platform.python_version(),
            "numpy": np.__version__, "pandas": pd.__version__, "lightgbm": lightgbm.__version__,
            "escalation_risk": er.__version__, "platform": platform.platform()}


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except Exception:  # noqa: BLE001 - informative only
        la = os.getloadavg()
        return f"load average: {la[0]:.2f}, {la[1]:.2f}, {la[2]:.2f}"


def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + (" + uncommitted changes in src/" if dirty else "")
    except Exception:  # noqa: BLE001
        return "unknown"


# --------------------------------------------------------------------------- the run

def score_requests(ds: er.Dataset, night: pd.Timestamp, n: int, seed: int) -> list[tuple[dict, list[dict]]]:
    """``n`` online requests: open disputes of the history, re-sent as new disputes (fresh ids)
    with their real parties, so the parties' whole history is looked up."""
    pts = open_points(ds, night)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(pts), size=n, replace=len(pts) < n)
    ids = pts["dispute_id"].to_numpy(dtype=object)[pick]
    inc = ds.incidents.set_index("incident_id")
    cols = [c.name for c in er.contract.TABLES["incidents"].columns]
    pcols = [c.name for c in er.contract.TABLES["incident_parties"].columns]
    parties = ds.incident_parties[ds.incident_parties["incident_id"].isin(set(ids))]
    by_inc = {k: g for k, g in parties.groupby("incident_id", sort=False)}
    out = []
    for i, did in enumerate(ids):
        row = inc.loc[did]
        new_id = f"BENCH-{i:06d}"
        d = {c: (row[c] if c != "incident_id" else new_id) for c in cols if c == "incident_id" or c in row.index}
        d = {k: (None if (not isinstance(v, str) and pd.isna(v)) else v) for k, v in d.items()}
        d["related_incident_id"] = None
        d["closed_at"] = None
        d["status"] = "open"
        ps = by_inc.get(did)
        plist = [] if ps is None else [
            {c: (new_id if c == "incident_id" else (None if (not isinstance(v, str) and pd.isna(v)) else v))
             for c, v in r.items() if c in pcols} for r in ps.to_dict("records")]
        out.append((d, plist))
    return out


def run(args) -> dict:
    t_script = time.perf_counter()
    started = _dt.datetime.now().astimezone()
    load_start = uptime()
    bench = Bench(Path(args.profile_dir) if args.profile_dir else None,
                  set(s for s in (args.profile or "").split(",") if s))
    N = args.persons
    tmp = Path(tempfile.mkdtemp(prefix=f"er-bench-{N}-", dir=args.tmp))
    data_dir = tmp / "data"
    extra: dict = {"tmp": str(tmp)}
    print(f"benchmark: {N:,} persons, seed {args.seed}, temp {tmp}", file=sys.stderr)

    # ---------------------------------------------------------------- data
    with bench.stage("generate", "generate (synth.generate_tables)") as s:
        tables, truth = generate_tables(N, seed=args.seed, linkage_noise=args.linkage_noise)
        n_rows = sum(len(t) for t in tables.values())
        n_inc = len(tables["incidents"])
        n_disp = int((tables["incidents"]["kind"] == "dispute").sum())
        s["notes"] = f"{n_rows:,} rows in {len(tables)} tables; {n_inc:,} incidents, {n_disp:,} disputes"

    with bench.stage("write", "write Parquet (synth.write_tables)") as s:
        write_tables(tables, data_dir, "parquet")
        mark_synthetic(data_dir)  # read with the public sample key: only a synthetic folder may be
        size = sum(f.stat().st_size for f in data_dir.glob("*.parquet"))
        s["notes"] = f"{size / MB:,.0f} MB on disk"

    with bench.stage("linkage_keys", "linkage keys (normalize.linkage_keys, part of load)"):
        lk = er_normalize.linkage_keys(tables["persons"], b"benchmark-linkage-key-0123456789")
    bench.rows[-1]["notes"] = f"{len(lk):,} person records, {lk.shape[1]} keys, " \
                              f"{_rate(len(lk), bench.rows[-1]['seconds'])}"
    truth = truth.set_index("person_id")["true_person"]
    del tables, lk

    # Linkage noise writes ids with bad check digits (as real exports hold): a strict load
    # refuses them, so the benchmark loads as the nightly job does, quarantining bad rows.
    with bench.stage("load", "load + validate (load_dataset, Parquet, errors=\"quarantine\")") as s:
        ds = er.load_dataset(data_dir, errors="quarantine")
        s["notes"] = f"{len(ds.persons):,} persons, {len(ds.incidents):,} incidents, " \
                     f"{len(ds.incident_parties):,} parties; {len(ds.quarantine):,} problems quarantined"
    print(f"load: {len(ds.quarantine):,} data contract problem(s) quarantined (linkage noise {args.linkage_noise})",
          flush=True)

    night = pd.Timestamp(ds.incidents["reported_at"].max()).normalize()
    extra["night"] = str(night.date())

    with bench.stage("link", "link persons (link_persons)", target_s=5.0 * N / 1_000_000):
        key = er.link_persons(ds)
    st = er_linking.linkage_summary(ds)
    t = truth.reindex(key.index).to_numpy()
    sizes = pd.Series(t).value_counts()
    true_pairs = int((sizes * (sizes - 1) // 2).sum())
    found = pd.DataFrame({"t": t, "k": key.to_numpy()}).groupby(["t", "k"]).size()
    recall = float((found * (found - 1) // 2).sum()) / max(true_pairs, 1)
    false_merges = int((pd.Series(t).groupby(key.to_numpy()).nunique() - 1).sum())
    row = bench.rows[-1]
    row["notes"] = (f"{len(key):,} person_ids -> {key.nunique():,} persons; {st['candidate_pairs']:,} candidate "
                    f"pairs; recall of true pairs {recall:.4f}, {false_merges} false merges "
                    f"({false_merges / len(key) * 1e4:.2f} per 10,000), expected {st['expected_false_matches']:.2f}; "
                    f"+{row['peak_mb'] - row['rss_start_mb']:,.0f} MB over the stage's start "
                    f"(linkage noise {args.linkage_noise})")
    extra["linkage"] = {"recall": recall, "false_merges": false_merges, **st}
    del truth

    with bench.stage("adjacency", f"build adjacency (graph.adjacency at {night.date()})") as s:
        A, keys = er_graph.adjacency(ds, as_of=night)
        s["notes"] = f"{len(keys):,} persons, {A.nnz // 2:,} ties"
    del A, keys

    with bench.stage("index", "history index build (history_index)") as s:
        idx = history_index(ds)
        s["notes"] = f"{len(idx.incidents):,} incidents, {len(idx.persons):,} persons"

    pts_open = open_points(ds, night)
    with bench.stage("features_open", f"features, all open disputes at {night.date()}") as s:
        X_open = er.build_features(ds, pts_open)
    bench.rows[-1]["notes"] = f"{len(X_open):,} points, {_rate(len(X_open), bench.rows[-1]['seconds'])}"

    allp = report_points(ds)
    M = min(args.points if args.points is not None else 200_000, len(allp))
    rng = np.random.default_rng(args.seed)
    pts_m = allp.iloc[np.sort(rng.choice(len(allp), size=M, replace=False))].reset_index(drop=True)
    with bench.stage("features_points", f"features, {M:,} disputes at report time") as s:
        X_m = er.build_features(ds, pts_m)
    bench.rows[-1]["notes"] = f"{len(X_m):,} of {len(allp):,} disputes, " \
                              f"{_rate(len(X_m), bench.rows[-1]['seconds'])}"
    del X_m, pts_m, allp

    # ---------------------------------------------------------------- model
    cutoff = (night - pd.DateOffset(months=6)).normalize()
    model_note = ""
    if args.model:
        model = er.load_model(args.model)
        model_note = f"model loaded from {args.model} ({model.version})"
    elif args.skip_train:
        with bench.stage("train_small", f"train on a {args.train_persons:,}-person district (not at N)") as s:
            small = generate_district(args.train_persons, seed=args.seed)
            c_small = (pd.Timestamp(small.incidents["reported_at"].max()).normalize()
                       - pd.DateOffset(months=6)).normalize()
            model = er.train(small, cutoff=c_small, seed=args.seed)
            tr = model.manifest["training"]
            s["notes"] = (f"--skip-train: generate + train at {args.train_persons:,} persons; "
                          f"{tr['n_train']:,} examples, {tr['best_iteration']} trees")
            del small
        model_note = f"--skip-train: model trained on a {args.train_persons:,}-person district, same seed"
    else:
        with bench.stage("train", f"train (cutoff {cutoff.date()}, early stopping)") as s:
            model = er.train(ds, cutoff=cutoff, seed=args.seed)
            tr = model.manifest["training"]
            s["notes"] = (f"{tr['n_train']:,} train + {tr['n_validation']:,} validation examples, "
                          f"{tr['best_iteration']} trees")
        model_note = "trained at this N"
    extra["model"] = model_note

    # ---------------------------------------------------------------- batch scoring
    never = {lvl: float("inf") for lvl in ALERT_LEVELS}
    with bench.stage("score", "batch score with levels (RiskModel.score, no reasons)") as s:
        sc = model.score(ds, night, thresholds=never)
    t_score = bench.rows[-1]["seconds"]
    bench.rows[-1]["notes"] = f"{len(sc):,} open disputes, {_rate(len(sc), t_score)} (features included)"
    del sc

    Mx = model._matrix(X_open)
    reps = max(1, int(2e5 // max(len(Mx), 1)))
    t0 = time.perf_counter()
    for _ in range(reps):
        model.booster.predict(Mx, raw_score=True)
    t_raw = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        p = model.predict_proba(X_open)
    t_proba = (time.perf_counter() - t0) / reps
    n = len(X_open)
    extra["throughput"] = {
        "rows": n,
        "booster_predict_rows_s": n / t_raw if t_raw else float("nan"),
        "predict_proba_rows_s": n / t_proba if t_proba else float("nan"),
        "score_rows_s": n / t_score if t_score else float("nan"),
    }
    del Mx

    levels = assign_levels(p, model.thresholds)
    alerted = np.flatnonzero(np.isin(levels, ALERT_LEVELS))
    Xa = X_open.iloc[alerted]
    with bench.stage("reasons", "reasons for the alerted (RiskModel.contributions)") as s:
        C = model.contributions(Xa)
    t_c = bench.rows[-1]["seconds"]
    t0 = time.perf_counter()
    model.reasons(Xa)
    t_r = time.perf_counter() - t0
    bench.rows[-1]["notes"] = (f"{len(Xa):,} alerted of {n:,}; SHAP {1e3 * t_c / max(len(Xa), 1):.2f} ms/row; "
                               f"full reasons() {t_r:.2f} s, {1e3 * t_r / max(len(Xa), 1):.2f} ms/row")
    extra["alerted"] = {lvl: int((levels == lvl).sum()) for lvl in ALERT_LEVELS}
    del C, Xa

    # ---------------------------------------------------------------- online scoring
    reqs = score_requests(ds, night, args.calls + args.warmup, args.seed)
    with bench.stage("scorer", "Scorer(model, history) (index cached on the dataset)") as s:
        scorer = er.Scorer(model, ds)
    lat, cpu, lat_nr, cpu_nr = [], [], [], []
    with bench.stage("score_dispute", f"score_dispute() x {args.calls:,} warm, disputes the history never saw") as s:
        for i, (d, ps) in enumerate(reqs):
            t0, c0 = time.perf_counter(), time.thread_time()
            scorer.score_dispute(d, ps, as_of=night)
            if i >= args.warmup:
                lat.append(time.perf_counter() - t0)
                cpu.append(time.thread_time() - c0)
        # the same calls without reasons (top_reasons=0): the SHAP share of the latency
        for i, (d, ps) in enumerate(reqs[: args.warmup + 200]):
            t0, c0 = time.perf_counter(), time.thread_time()
            scorer.score_dispute(d, ps, as_of=night, top_reasons=0)
            if i >= args.warmup:
                lat_nr.append(time.perf_counter() - t0)
                cpu_nr.append(time.thread_time() - c0)
        ms, ms_cpu = np.array(lat) * 1e3, np.array(cpu) * 1e3
        ms_nr, ms_nr_cpu = np.array(lat_nr) * 1e3, np.array(cpu_nr) * 1e3
        s["latency"] = {"p50": float(np.percentile(ms, 50)), "p90": float(np.percentile(ms, 90)),
                        "p99": float(np.percentile(ms, 99)), "max": float(ms.max()),
                        "cpu_p50": float(np.percentile(ms_cpu, 50)), "cpu_p99": float(np.percentile(ms_cpu, 99)),
                        "p50_no_reasons": float(np.percentile(ms_nr, 50)),
                        "p99_no_reasons": float(np.percentile(ms_nr, 99)),
                        "cpu_p99_no_reasons": float(np.percentile(ms_nr_cpu, 99))}
        la = s["latency"]
        s["notes"] = (f"wall p50 {la['p50']:.1f} ms, p90 {la['p90']:.1f} ms, p99 {la['p99']:.1f} ms, "
                      f"max {la['max']:.1f} ms (with 3 reasons); "
                      f"CPU p50 {la['cpu_p50']:.1f}, p99 {la['cpu_p99']:.1f} ms; "
                      f"without reasons wall p50 {la['p50_no_reasons']:.1f}, p99 {la['p99_no_reasons']:.1f} ms")
    extra["latency"] = bench.rows[-1]["latency"]
    bench.rows[-1]["seconds"] = float(np.sum(lat))  # the timed calls only

    # Scorer.add: one new dispute at a time, then a day's worth in one call, against the full re-index.
    add_reqs = score_requests(ds, night, args.adds + args.day_adds, args.seed + 1)

    def add_rows(batch, tag):
        inc_rows, party_rows, med_rows = [], [], []
        for j, (d, ps) in enumerate(batch):
            new_id = f"{tag}-{j:06d}"
            inc_rows.append({**d, "incident_id": new_id, "reported_at": night, "occurred_at": night})
            party_rows += [{**p, "incident_id": new_id} for p in ps]
            med_rows.append({"mediation_id": f"M{new_id}", "incident_id": new_id, "held_at": night,
                             "mediator_type": "grid_worker", "outcome": "failed"})
        return {"incidents": inc_rows, "incident_parties": party_rows, "mediations": med_rows}

    with bench.stage("scorer_add", f"Scorer.add: {args.adds} single disputes, then {args.day_adds:,} in one call") as s:
        one = []
        for j in range(args.adds):
            t0 = time.perf_counter()
            scorer.add(**add_rows(add_reqs[j:j + 1], f"ADD1-{j}"))
            one.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        scorer.add(**add_rows(add_reqs[args.adds:], "ADDDAY"))
        t_day = time.perf_counter() - t0
        grown = scorer.history
        t0 = time.perf_counter()
        history_index(er.Dataset(**grown.tables()))
        t_full = time.perf_counter() - t0
        s["add"] = {"one_p50_ms": float(np.median(one) * 1e3), "one_max_ms": float(np.max(one) * 1e3),
                    "day_s": t_day, "day_rows": args.day_adds, "rebuild_s": t_full}
        s["notes"] = (f"one dispute (+parties, +1 mediation): median {s['add']['one_p50_ms']:.0f} ms, "
                      f"max {s['add']['one_max_ms']:.0f} ms; {args.day_adds:,} disputes in one call "
                      f"{t_day:.2f} s; re-indexing the grown history from scratch {t_full:.2f} s")
    extra["add"] = bench.rows[-1]["add"]
    bench.rows[-1]["seconds"] = float(np.sum(one) + t_day)
    bench_peak_mb = max(r["peak_mb"] for r in bench.rows)

    # ---------------------------------------------------------------- similar past cases
    from escalation_risk.cases import build_case_index, similar_cases, use_case_index
    before = night - pd.Timedelta(days=1)
    with bench.stage("case_index", f"case index from scratch, disputes to {before.date()} (build_case_index)") as s:
        t0 = time.perf_counter()
        prev_idx = build_case_index(model, ds, before)
        s["notes"] = (f"{len(prev_idx):,} disputes at report time in {len(prev_idx.blocks)} categories "
                      f"(features + TreeSHAP + reasons), {_rate(len(prev_idx), time.perf_counter() - t0)}")
    with bench.stage("case_index_night", f"case index of the night {night.date()} from the previous one") as s:
        cidx = build_case_index(model, ds, night, previous=prev_idx)
        s["notes"] = f"{len(cidx) - len(prev_idx):,} new disputes; {len(cidx):,} in the index"
    del prev_idx
    use_case_index(ds, cidx)
    pts_cases = open_points(ds, night)
    rng = np.random.default_rng(args.seed)
    pick = pts_cases["dispute_id"].to_numpy(dtype=object)[rng.choice(len(pts_cases), size=args.case_calls + 20)]
    with bench.stage("similar_cases", f"similar_cases(k=10) x {args.case_calls:,} warm (batch path, by id)") as s:
        lat = []
        for i, did in enumerate(pick):
            t0 = time.perf_counter()
            similar_cases(model, ds, did, night, k=10, index=cidx)
            if i >= 20:
                lat.append(time.perf_counter() - t0)
        ms = np.array(lat) * 1e3
        lat_d = []
        for i, (d, ps) in enumerate(reqs[: args.case_calls + 20]):
            t0 = time.perf_counter()
            scorer.similar_cases(d, ps, as_of=night, k=10)
            if i >= 20:
                lat_d.append(time.perf_counter() - t0)
        ms_d = np.array(lat_d) * 1e3
        s["latency"] = {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                        "p50_dicts": float(np.percentile(ms_d, 50)), "p99_dicts": float(np.percentile(ms_d, 99))}
        la = s["latency"]
        s["notes"] = (f"by id p50 {la['p50']:.1f} ms, p99 {la['p99']:.1f} ms; Scorer.similar_cases (dicts) "
                      f"p50 {la['p50_dicts']:.1f} ms, p99 {la['p99_dicts']:.1f} ms; target < 50 ms")
    extra["similar_cases"] = bench.rows[-1]["latency"]
    bench.rows[-1]["seconds"] = float(np.sum(lat) + np.sum(lat_d))
    del cidx, pts_cases
    bench_peak_mb = max(r["peak_mb"] for r in bench.rows)

    # ---------------------------------------------------------------- nightly, fresh process
    model_dir = tmp / "model"
    model.save(model_dir)
    del scorer, reqs, X_open, pts_open, idx, key, ds
    gc.collect()
    store = f"sqlite:///{tmp / 'alerts.db'}"
    prof = ""
    if bench.profile_dir is not None and ({"nightly", "all"} & bench.profile_stages):
        bench.profile_dir.mkdir(parents=True, exist_ok=True)
        prof = str(bench.profile_dir / "nightly.prof")
    child = None
    if not args.skip_nightly:
        with bench.stage("nightly", "nightly job end to end (run_night, fresh process, SQLite)") as s:
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_nightly-child", str(data_dir),
                                   str(model_dir), str(night.date()), store, str(tmp / "out"), prof],
                                  capture_output=True, text=True)
            t_proc = time.perf_counter() - t0
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("NIGHTLY_JSON ")]
            if proc.returncode or not line:
                s["notes"] = f"FAILED (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"
                child = None
            else:
                child = json.loads(line[0].split(" ", 1)[1])
                parts = ", ".join(f"{k} {v:.1f}" for k, v in child["parts"].items())
                s["notes"] = (f"{child['n_scored']:,} scored, {child['new_alerts']:,} alerts; "
                              f"run_night {child['seconds']:.1f} s ({parts}); process {t_proc:.1f} s with imports")
    if child is not None:
        bench.rows[-1]["seconds"] = child["seconds"]
        bench.rows[-1]["peak_mb"] = child["peak_mb"]
    extra["nightly"] = child

    if child is not None:
        ds = er.load_dataset(data_dir, errors="quarantine")  # freed before the nightly child; loaded again
        with bench.stage("governance", "governance index (by grid, monthly, with the store)") as s:
            g = governance_index(ds, store, by="grid", period="M", as_of=night)
            s["notes"] = f"{len(g):,} rows, {int((g['status'] == 'ok').sum()):,} with a score"
        with bench.stage("briefing", "daily briefing HTML (write_briefing)") as s:
            page = write_briefing(ds, store, night, tmp / "out")
            s["notes"] = f"{page.stat().st_size / 1024:.0f} KB"

    bench.sampler.stop()
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
        extra["tmp"] = "(removed)"
    total = time.perf_counter() - t_script
    return {"persons": N, "seed": args.seed, "points": M, "started": started.isoformat(timespec="seconds"),
            "load_start": load_start, "load_end": uptime(), "machine": machine(), "git": git_rev(),
            "rows": bench.rows, "extra": extra, "total_seconds": total,
            "bench_peak_mb": bench_peak_mb, "hwm_mb": _status_kb("VmHWM") / 1024}


# --------------------------------------------------------------------------- report

def _verdict(row: dict, N: int) -> str:
    k, t = row["key"], row["seconds"]
    if k == "similar_cases":
        lat = row.get("latency", {})
        return "ok" if max(lat.get("p99", 1e9), lat.get("p99_dicts", 1e9)) < 50 else "**MISS** (p99 < 50 ms)"
    if N <= 200_000:
        if k == "score_dispute":
            return ""
        return "ok" if t < 30 else "**MISS** (<30 s)"
    if k == "nightly":
        ok = t < 300 and row["peak_mb"] < 8192
        return "ok" if ok else "**MISS** (<300 s, <8 GB)"
    if k == "generate":
        return "ok" if t < 600 else "**MISS** (<600 s)"
    if k == "link":
        ok = t <= 5 and row["peak_mb"] - row["rss_start_mb"] <= 1024
        return "ok" if ok else "**MISS** (<=5 s, <=1 GB over the stage's start)"
    return ""


def render(res: dict) -> str:
    N = res["persons"]
    m = res["machine"]
    ex = res["extra"]
    out = [f"### {N:,} persons (seed {res['seed']}, night {ex['night']})", ""]
    out.append(f"- date: {res['started']}; commit {res['git']}")
    out.append(f"- machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM; {m['platform']}")
    out.append(f"- versions: python {m['python']}, numpy {m['numpy']}, pandas {m['pandas']}, "
               f"lightgbm {m['lightgbm']}, escalation_risk {m['escalation_risk']}")
    out.append(f"- load at start: `{res['load_start']}`")
    out.append(f"- load at end: `{res['load_end']}`")
    out.append(f"- model: {ex['model']}")
    out.append("")
    out.append("| stage | wall s | peak RSS MB | rows / notes | target |")
    out.append("|---|---:|---:|---|---|")
    for r in res["rows"]:
        out.append(f"| {r['stage']} | {r['seconds']:.2f} | {r['peak_mb']:,.0f} | {r['notes']} | "
                   f"{_verdict(r, N)} |")
    out.append(f"| **whole script** | **{res['total_seconds']:.1f}** | {max(res['hwm_mb'], res['bench_peak_mb']):,.0f} "
               f"| benchmark process high-water mark {res['hwm_mb']:,.0f} MB | "
               f"{('ok' if res['total_seconds'] < 180 else '**MISS** (<180 s)') if N <= 200_000 else ''} |")
    tp = ex["throughput"]
    out.append("")
    out.append(f"Scoring throughput on the same {tp['rows']:,}-row feature matrix (open disputes): "
               f"raw `lightgbm.Booster.predict` {tp['booster_predict_rows_s']:,.0f} rows/s; "
               f"`RiskModel.predict_proba` {tp['predict_proba_rows_s']:,.0f} rows/s; "
               f"library batch score (`RiskModel.score`, features included) {tp['score_rows_s']:,.0f} rows/s "
               f"— ratio booster / library = {tp['booster_predict_rows_s'] / tp['score_rows_s']:,.0f}x.")
    la = ex["latency"]
    out.append("")
    target = " (target p99 <= 5 ms: " + ("ok" if la["p99"] <= 5 else "**MISS**") + ")"
    out.append(f"`score_dispute()` warm latency (disputes the history never saw, 3 reasons): p50 {la['p50']:.1f} ms, "
               f"p90 {la['p90']:.1f} ms, p99 {la['p99']:.1f} ms, max {la['max']:.1f} ms{target}; CPU time per call "
               f"p50 {la.get('cpu_p50', float('nan')):.1f} ms, p99 {la.get('cpu_p99', float('nan')):.1f} ms "
               f"(the wall figure less the waits for a core); without reasons "
               f"p50 {la['p50_no_reasons']:.1f} ms, p99 {la['p99_no_reasons']:.1f} ms. Alerted at the night: "
               + ", ".join(f"{k} {v:,}" for k, v in ex["alerted"].items()) + ".")
    ad = ex.get("add")
    if ad:
        out.append("")
        out.append(f"`Scorer.add()`: one new dispute with its parties and a mediation {ad['one_p50_ms']:.0f} ms "
                   f"(median; max {ad['one_max_ms']:.0f} ms); {ad['day_rows']:,} disputes in one call "
                   f"{ad['day_s']:.2f} s; re-indexing the grown history from scratch {ad['rebuild_s']:.2f} s.")
    if N > 200_000:
        peak = max(res["hwm_mb"], res["bench_peak_mb"], (ex.get("nightly") or {}).get("peak_mb", 0))
        out.append("")
        out.append(f"Peak memory: benchmark process {res['hwm_mb']:,.0f} MB (history, features and model all "
                   f"held), nightly process {(ex.get('nightly') or {}).get('peak_mb', float('nan')):,.0f} MB "
                   f"(target < 8,192 MB: {'ok' if peak < 8192 else '**MISS**'} for the larger).")
    out.append("")
    return "\n".join(out)


INTRO = """# Benchmarks

How long each stage takes and how much memory it holds, as a user meets it, at
district (100,000 persons) and province (1,000,000 persons) scale.

    make bench                                            # python benchmarks/run.py --persons 100000
    .venv/bin/python benchmarks/run.py --persons 1000000 --skip-train

`benchmarks/run.py` generates a district with the package's own generator
(`synth.generate_tables`, seed 0 unless `--seed`), writes it as Parquet to a temp
folder and times each stage. Options: `--points M` (features for M disputes at
their report time, default min(200,000, all)), `--skip-train` (train on a
20,000-person district instead, `--train-persons`), `--model DIR` (load a model),
`--linkage-noise P` (share of duplicate person records written with linkage noise,
default 0.25; the link stage reports recall and false merges against the truth),
`--profile STAGE,...` with `--profile-dir` (cProfile of those stages), `--out`
(this file; the run's section is replaced when the same `--persons` is run again).

Peak RSS per stage: a thread samples VmRSS every 20 ms; when the process
high-water mark (VmHWM) grew during a stage, that mark is the stage's peak. The
nightly job runs in a fresh process (as the cron job would), from the Parquet
folder, so its figures include loading and indexing and its memory is its own.
The CPU is shared with other work; each run records `uptime` at its start and end.

## Targets

| scale | target |
|---|---|
| 100,000 persons | every stage under 30 s; the whole script under 3 minutes; `score_dispute()` p99 at most 5 ms warm (3 reasons, a dispute the history never saw) |
| 1,000,000 persons | nightly end to end under 5 minutes; peak memory under 8 GB; generation under 10 minutes; `score_dispute()` p99 at most 5 ms warm with the whole history in memory (3 reasons) |

## Runs

"""


def write_markdown(path: Path, section: str, N: int) -> None:
    from bench_common import write_section
    write_section(path, section, f"run persons={N}", INTRO)


def main(argv=None) -> None:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--_nightly-child":
        nightly_child(*argv[1:7])
        return
    if "--province" in argv:  # the province benchmark: local engine against Spark (benchmarks/province.py)
        sys.path.insert(0, str(HERE))
        from province import main as province_main
        province_main(argv)
        return
    from bench_common import parser
    ap = parser(__doc__.split("\n")[0], persons=None)
    ap.add_argument("--points", type=int, default=None, help="disputes at report time (default min(200,000, all))")
    ap.add_argument("--linkage-noise", type=float, default=0.25,
                    help="share of duplicate person records written with linkage noise (synth linkage_noise)")
    ap.add_argument("--skip-train", action="store_true",
                    help="do not train at N; train on a --train-persons district instead")
    ap.add_argument("--train-persons", type=int, default=20_000)
    ap.add_argument("--calls", type=int, default=1000, help="timed score_dispute calls")
    ap.add_argument("--skip-nightly", action="store_true", help="leave out the nightly job (online figures only)")
    ap.add_argument("--adds", type=int, default=20, help="Scorer.add calls of one dispute each")
    ap.add_argument("--day-adds", type=int, default=1000, help="disputes added in one Scorer.add call")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--case-calls", type=int, default=300, help="timed similar_cases calls (each path)")
    ap.add_argument("--profile", default="", help="comma-separated stage keys to cProfile ('all')")
    ap.add_argument("--profile-dir", default=None)
    ap.add_argument("--json", default=None, help="also write the raw results here")
    args = ap.parse_args(argv)
    if args.profile and not args.profile_dir:
        args.profile_dir = str(Path(tempfile.gettempdir()) / f"er-bench-prof-{args.persons}")

    try:
        res = run(args)
    except BaseException:
        print("\nFAILED; stages finished before the failure:", file=sys.stderr)
        for r in _ROWS:
            print(f"  {r['stage']}: {r.get('seconds', float('nan')):.2f} s, {r.get('peak_mb', 0):,.0f} MB, "
                  f"{r['notes']}", file=sys.stderr)
        raise
    section = render(res)
    print()
    print(section)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str), encoding="utf-8")
    if args.out:
        write_markdown(Path(args.out), section, args.persons)
        print(f"(written to {args.out}; temp folder {res['extra']['tmp']})", file=sys.stderr)


if __name__ == "__main__":
    main()
