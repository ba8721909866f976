#!/usr/bin/env python
"""Province benchmark: the same night on the local engine and on a standalone Spark cluster.

    python benchmarks/run.py --province                        # 3, 10, 20 districts of 5,000 persons
    python benchmarks/province.py --province --districts 3,10,20 --persons 10000 --train-districts 10

Generates a province (``synth.iter_province``: ids repeat across districts, some
people registered in two districts), writes it as Parquet, then runs
``run_province_night`` twice, each in a fresh process: ``--engine local``, and
``--engine spark`` on a standalone cluster of a master and two one-core workers started
here (``tests/spark_cluster.py``, the test suite's) and stopped at the end. It checks
that both give the same scores (to 1e-9) and the same alerts, and records wall time
per step, the driver's peak memory (its Python process and its JVM), each district
task's time and memory (its Python worker; the executor JVMs), the bytes the driver
collected from tasks and read back to record, and a projection (stated as one) to 90
districts of 700,000 people. Sized by default for a 2-core machine shared with others.
The driver's Python and JVM peaks are each process's VmHWM, reported side by side and
summed against the target; ``$ER_BENCH_DRIVER_MEMORY`` and ``$ER_BENCH_DRIVER_JAVA_OPTIONS``
replace the session's driver settings (to compare them: add
``-XX:NativeMemoryTracking=summary`` and the JVM's heap, metaspace... are recorded too).
Written into BENCHMARKS.md between ``<!-- run province -->`` markers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_common as B

HERE, ROOT = B.HERE, B.ROOT
sys.path.insert(0, str(ROOT / "src"))
MARKER = "run province"  # the section's markers in BENCHMARKS.md


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _vmhwm_kb(pid: int) -> int:
    return _status_kb(pid, "VmHWM")


def _executor_jvm_peaks_mb(app_id: str) -> list[float]:
    """Peak resident memory of this application's executor JVMs (same machine: /proc)."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes()
        except OSError:
            continue
        if b"CoarseGrainedExecutorBackend" in cmd and app_id.encode() in cmd:
            out.append(_vmhwm_kb(int(p.name)) / 1024)
    return out


def _sample_rss(pids: list[int], every: float = 1.0) -> list[list[float]]:
    """Every ``every`` seconds, (seconds since now, resident MB of each pid) in a daemon thread."""
    import threading
    out: list[list[float]] = []
    t0 = time.perf_counter()

    def run() -> None:
        while True:
            out.append([round(time.perf_counter() - t0, 1)] + [round(_status_kb(p, "VmRSS") / 1024) for p in pids])
            time.sleep(every)
    threading.Thread(target=run, daemon=True).start()
    return out


def _nmt(pid: int) -> str:
    """The JVM's native memory summary (heap, metaspace, threads, code, GC...) when it tracks it."""
    try:
        out = subprocess.run(["jcmd", str(pid), "VM.native_memory", "summary", "scale=MB"], capture_output=True,
                             text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return "\n".join(x.strip() for x in out.splitlines() if x.strip().startswith(("Total", "- ")))


def _session(engine: str, master: str) -> tuple:
    """(session, its JVM's pid, seconds to start it) for engine spark; (None, None, 0.0) else."""
    if engine != "spark":
        return None, None, 0.0
    from escalation_risk import spark as S
    t0 = time.perf_counter()
    given = {"driver_memory": os.environ.get("ER_BENCH_DRIVER_MEMORY"),
             "driver_java_options": os.environ.get("ER_BENCH_DRIVER_JAVA_OPTIONS")}
    spark = S.session(master, **{k: v for k, v in given.items() if v})
    return spark, int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()), time.perf_counter() - t0


def child(engine: str, province: str, model: str, night: str, store: str, out: str, result: str,
          master: str = "") -> None:
    """One night in this (fresh) process; writes what it measured as JSON to ``result``."""
    t_start = time.perf_counter()
    from escalation_risk import province as P
    from escalation_risk import spark as S
    spark, jvm_pid, t_session = _session(engine, master)
    samples = _sample_rss([os.getpid(), jvm_pid] if jvm_pid else [os.getpid()])
    t0 = time.perf_counter()
    rep = P.run_province_night(province, model, night, store=f"sqlite:///{store}", out_dir=out, engine=engine,
                               spark=spark)
    t_night = time.perf_counter() - t0
    res = {
        "engine": engine, "master": master, "night_s": t_night, "session_s": t_session,
        "process_s": time.perf_counter() - t_start, "seconds": rep.seconds,
        "driver_python_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "jvm_peak_mb": _vmhwm_kb(jvm_pid) / 1024 if jvm_pid else None,
        "tasks": rep.tasks.to_dict(orient="list"), "scored": sum(s.n_scored for s in rep.summaries.values()),
        "cpu_s": time.process_time(),
        "alerts": sum(s.new_alerts for s in rep.summaries.values()), "cross_people": rep.cross_people,
        "rss_samples": samples,
    }
    if spark is not None:
        res["jvm_nmt"] = _nmt(jvm_pid)
        conf = spark.sparkContext.getConf()
        res["driver_conf"] = {k: conf.get(k, "") for k in ("spark.driver.memory", "spark.driver.extraJavaOptions")}
        res["collected"] = dict(S.COLLECTED)
        res["linkage"] = dict(S.LINKAGE)
        res["executor_jvm_peak_mb"] = _executor_jvm_peaks_mb(spark.sparkContext.applicationId)
        spark.stop()
    Path(result).write_text(json.dumps(res, default=float), encoding="utf-8")


def train_child(engine: str, province: str, cutoff: str, result: str, master: str = "", max_points: str = "") -> None:
    """``train_province`` in this (fresh) process; its time, memory and booster to ``result``."""
    t_start = time.perf_counter()
    from escalation_risk import spark as S
    from escalation_risk.province_training import train_province
    spark, jvm_pid, t_session = _session(engine, master)
    t0 = time.perf_counter()
    model = train_province(province, cutoff=cutoff, engine=engine, spark=spark,
                           max_points=int(max_points) if max_points else None)
    res = {"engine": engine, "train_s": time.perf_counter() - t0, "session_s": t_session,
           "process_s": time.perf_counter() - t_start, "cpu_s": time.process_time(),
           "driver_python_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "jvm_peak_mb": _vmhwm_kb(jvm_pid) / 1024 if jvm_pid else None,
           "sample": model.manifest["training_data"]["sample"], "booster": model.booster.model_to_string()}
    if spark is not None:
        res["collected"] = dict(S.COLLECTED)
        spark.stop()
    Path(result).write_text(json.dumps(res, default=float), encoding="utf-8")


def _in_child(cmd: list[str], result: Path, what: str, key: str) -> dict:
    """Run one measured child process; its JSON, with the wall time of the whole process."""
    print(f"  … {what}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(HERE / "province.py"), *cmd], check=True, timeout=7200)
    res = json.loads(result.read_text(encoding="utf-8"))
    res["wall_s"] = time.perf_counter() - t0
    print(f"    {res[key]:.1f} s, {res['wall_s']:.1f} s process", file=sys.stderr, flush=True)
    return res


def _run_train(engine: str, tmp: Path, province: Path, cutoff: str, master: str = "", max_points: int = 0) -> dict:
    result = tmp / f"train-{engine}.json"
    return _in_child(["--_train", engine, str(province), cutoff, str(result), master, str(max_points or "")],
                     result, f"{engine} train {master}", "train_s")


def _run_child(engine: str, tmp: Path, province: Path, model: str, night: str, master: str = "") -> dict:
    out = tmp / f"out-{engine}"
    result = tmp / f"{engine}.json"
    for old in (out, tmp / f"{engine}.db"):  # each size's night from a clean store and folder
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    return _in_child(["--_child", engine, str(province), model, night, str(tmp / f"{engine}.db"), str(out),
                      str(result), master], result, f"{engine} night {master}", "night_s")


def _alerts(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT district, dispute_id, level, round(probability, 9), trend, reasons, plan, "
                            "status, due_at FROM alerts ORDER BY district, dispute_id").fetchall()


def compare(tmp: Path, night: str) -> dict:
    import numpy as np
    import pandas as pd
    a = pd.read_csv(tmp / "out-local" / f"scores-{night}.csv")
    b = pd.read_csv(tmp / "out-spark" / f"scores-{night}.csv")
    same_rows = a[["district", "dispute_id"]].equals(b[["district", "dispute_id"]])
    diff = float(np.abs(a["probability"] - b["probability"]).max()) if same_rows else float("nan")
    rest = a.drop(columns="probability").equals(b.drop(columns="probability"))
    al, bl = _alerts(tmp / "local.db"), _alerts(tmp / "spark.db")
    return {"rows": len(a), "same_rows": bool(same_rows), "max_abs_diff": diff, "other_columns_equal": bool(rest),
            "alerts_local": len(al), "alerts_spark": len(bl), "alerts_equal": al == bl}


#: The district-size runs this projection starts from (BENCHMARKS.md: "1,000,000 persons"
#: night, and "Record linkage, 1,035,000 person records"), measured on this machine type.
ANCHOR_1M = {"night_s": 88.8, "peak_gb": 6.7, "load_s": 25.2, "score_s": 58.1, "record_s": 3.5,
             "link_s": 5.48, "keys_gb": 0.774, "open": 209_275}


def _mmm(v: list[float], fmt: str = ".1f") -> str:
    return " / ".join(format(x, fmt) for x in (min(v), sum(v) / len(v), max(v)))


def _same(cmp: dict) -> bool:
    return bool(cmp["same_rows"] and cmp["max_abs_diff"] <= 1e-9 and cmp["other_columns_equal"]
                and cmp["alerts_equal"])


def render(meta: dict, runs: list[tuple], train: dict | None) -> str:
    """The section: one row per province size and engine, the training run, the projection."""
    runs = [tuple(r) + (meta["persons"],) if len(r) == 4 else tuple(r) for r in runs]
    lines = [
        f"### Province: {', '.join(f'{r[0]} × {r[4]:,}' for r in runs)} (districts × persons), local "
        f"engine and a standalone cluster (seed {meta['seed']}, night {meta['night']})",
        "",
        f"{meta['date']}, git {meta['git']}, {meta['machine']}; load average at start {meta['load_start']}, "
        f"at end {meta['load_end']} (a machine shared with 5 other engineers: wall times are inflated several-"
        f"fold and noisy; CPU time is the driver process's own). One province of {meta['max_districts']} "
        f"districts {meta['generated']}; the smaller runs take its first districts. Each "
        "night and each training in a fresh process. Spark: a master and two workers of one core and 1 GB "
        "(`spark-class`, as in `tests/spark_cluster.py`), executors of 1 GB, driver "
        + "; ".join(sorted({f"`spark.driver.memory` {r[2].get('driver_conf', {}).get('spark.driver.memory', '2g')}"
                            + (f", `{o}`" if (o := r[2].get('driver_conf', {}).get('spark.driver.extraJavaOptions'))
                               else "") for r in runs})) + "; "
        f"model `{meta['model']}`.",
        "",
        "| districts | engine | night wall | driver CPU | driver peak memory | district task s (min / mean / max) "
        "| task memory MB (min / mean / max) | collected per district | same night as local |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, local, spark, cmp, persons in runs:
        col = spark["collected"]
        size = f"{n} × {persons:,}"
        if local is not None:
            lines.append(
                f"| {size} | local | {local['night_s']:.1f} s | {local['cpu_s']:.1f} s | "
                f"{local['driver_python_peak_mb']:,.0f} MB | {_mmm(local['tasks']['seconds'])} (scoring only) | "
                f"{_mmm(local['tasks']['peak_rss_mb'], ',.0f')} (the driver itself) | everything (one process) | |")
        same = (f"{'yes' if _same(cmp) else 'NO'} ({cmp['rows']:,} scores, max abs diff {cmp['max_abs_diff']:.0e})"
                if cmp is not None else "not run on the local engine")
        lines.append(
            f"| {size} | spark | {spark['night_s']:.1f} s (+ session {spark['session_s']:.1f} s) | "
            f"{spark['cpu_s']:.1f} s | Python {spark['driver_python_peak_mb']:,.0f} MB + JVM "
            f"{spark['jvm_peak_mb']:,.0f} MB | {_mmm(spark['tasks']['seconds'])} | Python worker "
            f"{_mmm(spark['tasks']['peak_rss_mb'], ',.0f')}; executor JVMs "
            f"{', '.join(format(x, ',.0f') for x in spark['executor_jvm_peak_mb']) or 'n/a'} | task rows "
            f"{col['bytes'] / n:,.0f} B; score files read back to record {col['scores_bytes'] / n:,.0f} B | "
            f"{same} |")
    lines.append("")

    def step_text(e: dict) -> str:
        return " / ".join(f"{k} {e['seconds'].get(k, 0):.0f}" for k in ("load", "link", "score", "record")) + " s"
    steps = ", ".join(f"{n} × {persons:,}: " + (f"local {step_text(lo)}, " if lo is not None else "")
                      + f"spark {step_text(sp)}" for n, lo, sp, _, persons in runs)
    lines += [f"Steps (load / link / score / record, wall): {steps}.", ""]
    if train is not None:
        lo, sp = train.get("local"), train["spark"]
        smp = sp["sample"]
        lines += [
            f"**`train --engine spark`** on the {train['districts']}-district province (cutoff {train['cutoff']}, "
            f"sample by point, seed {smp['seed']}: {smp['sampled']:,} of {smp['examples']:,} examples): spark "
            f"{sp['train_s']:.1f} s wall (+ session {sp['session_s']:.1f} s), driver CPU {sp['cpu_s']:.1f} s, "
            f"driver peak Python {sp['driver_python_peak_mb']:,.0f} MB + JVM {sp['jvm_peak_mb']:,.0f} MB; "
            + (f"local engine (`train_province`, same sample) {lo['train_s']:.1f} s, CPU {lo['cpu_s']:.1f} s, "
               f"peak {lo['driver_python_peak_mb']:,.0f} MB. Same booster: "
               f"{'yes' if lo['booster'] == sp['booster'] else 'NO'}." if lo is not None else
               "the local engine's training was not run at this size (the booster's equality is the test's, "
               "`test_training_by_districts_on_spark_gives_the_local_booster`)."),
            "",
        ]
    # Districts this small are mostly fixed cost (imports, model, drift sample): the projection
    # starts from the district-size runs instead.
    a = ANCHOR_1M
    f = 700_000 / 1_000_000
    load, score, rec = a["load_s"] * f, a["score_s"] * f, a["record_s"] * f
    n_big, _, sp_big, _, _ = max(runs, key=lambda r: float(r[2].get("linkage", {}).get("records", 0) or 0))
    lk = sp_big.get("linkage", {})
    link_s, records = sp_big["seconds"].get("link", 0.0), max(float(lk.get("records", 0) or 0), 1.0)
    workers = 2
    lines += [
        "Linkage on Spark (the link step of each run: the province linkage spread over executors, the grouping "
        "by person key, the joins for each score task and the handover of shared records): "
        + "; ".join(f"{n} districts: {sp['linkage'].get('records', 0):,.0f} records, "
                    f"{sp['linkage'].get('candidate_pairs', 0):,.0f} candidate pairs, "
                    f"{sp['linkage'].get('accepted_pairs', 0):,.0f} accepted, linkage job "
                    f"{sp['linkage'].get('seconds', 0):.0f} s, link step {sp['seconds'].get('link', 0):.0f} s"
                    for n, _, sp, _, _ in runs if sp.get("linkage")) + ".",
        "",
        "**Projection, not a measurement**, to 90 districts of 700,000 people (63 M), on N executors of one "
        "core and at least 5 GB, from the 1,000,000-person district night "
        f"({a['night_s']:.0f} s, {a['peak_gb']:.1f} GB: load {a['load_s']:.0f} s, score {a['score_s']:.0f} s, "
        f"record {a['record_s']:.1f} s), taken as linear in people: per district load {load:.0f} s, score "
        f"{score:.0f} s, record {rec:.1f} s. Each district is read twice (its load task, which also writes its "
        "keys and its handover, and its score task): ⌈90/N⌉ × (2 × load + score). The link step measured at "
        f"{n_big} districts ({link_s:.0f} s for {records:,.0f} records on {workers} one-core executors) is taken "
        f"as spreading over executors and linear in records: {link_s:.0f} s × 63 M / {records / 1e6:.2f} M × "
        f"{workers} / N (an assumption: it was not measured on more executors). Plus the driver recording "
        f"districts one after another (≈ {90 * rec / 60:.0f} min) and the session's start:",
        "",
        "| executors N | projected night | of which linkage | of which serial (recording, session) |",
        "|---|---|---|---|",
    ]
    serial = 90 * rec + sp_big["session_s"]
    for e in (10, 30, 90):
        linkage = link_s * 63e6 / records * workers / e
        t = math.ceil(90 / e) * (2 * load + score) + linkage + serial
        lines.append(f"| {e} | {t / 60:,.0f} min | {linkage / 60:,.0f} min | {serial / 60:,.0f} min |")
    lines += [
        "",
        "No task holds the province: the linkage's largest single task is the EM fit on at most 3 × 150,000 "
        "sampled pairs; the u sample is at most 500,000 pairs; components are joined by label propagation in "
        f"Spark. A score task at 700,000 people needs about {a['peak_gb'] * f:.1f} GB. The driver holds one "
        "district's scores at a time (recording, the CSV written district by district, the report reading when "
        "asked).",
    ]
    return "\n".join(lines)


def render_from(args: argparse.Namespace) -> None:
    """One section from the results kept by earlier runs (``--keep``): sizes from one run
    or several (e.g. the largest province run with smaller districts), load averages as
    given in the notes of each run's directory (``load.txt``)."""
    runs, train, loads = [], None, []
    for item in args.render_from.split(","):
        folder, persons = item.rsplit(":", 1)
        for f in sorted(Path(folder).glob("results-*.json")):
            if f.name == "results-train.json":
                train = json.loads(f.read_text(encoding="utf-8"))
                continue
            r = json.loads(f.read_text(encoding="utf-8"))
            runs.append(tuple(r[:4]) + (int(persons),))
        if (Path(folder) / "load.txt").exists():
            loads.append((Path(folder) / "load.txt").read_text(encoding="utf-8").strip())
    runs.sort(key=lambda r: (r[0], r[4]))
    meta = {"persons": runs[0][4], "seed": args.seed, "night": args.night, "max_districts": max(r[0] for r in runs),
            "model": Path(args.model).name, "git": B.git_rev(), "generated": "generated before and reused",
            "date": B.utc_now(), "machine": B.machine(),
            "load_start": "; ".join(loads) or "n/a", "load_end": f"{os.getloadavg()[0]:.1f} (at rendering)"}
    section = render(meta, runs, train)
    print(section)
    if args.out:
        B.write_section(Path(args.out), section, MARKER)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--_child":
        child(*argv[1:9])
        return
    if argv and argv[0] == "--_train":
        train_child(*argv[1:7])
        return
    ap = B.parser(__doc__.split("\n")[0], persons=5_000, model=str(ROOT / "models" / "default"))
    ap.add_argument("--province", action="store_true", help="(the flag run.py dispatches on)")
    ap.add_argument("--districts", default="3,10,20", help="province sizes, e.g. 3,10,20 (one province, "
                    "the smaller take its first districts)")
    ap.add_argument("--train-districts", type=int, default=10, help="train on this size (0: no training run)")
    ap.add_argument("--cutoff", default="2025-01-01")
    ap.add_argument("--max-points", type=int, default=0, help="training sample size (0: every example)")
    ap.add_argument("--night", default="2025-06-30")
    ap.add_argument("--skip-local-at", default="", help="sizes run on Spark only (e.g. 20), the local engine's "
                    "night not run nor compared")
    ap.add_argument("--render-from", default="", help="DIR:PERSONS,...: render the results-*.json kept (--keep) by "
                    "earlier runs into one section instead of running")
    ap.add_argument("--province-dir", default=None, help="a province generated before (districts of --persons, "
                    "seed --seed, at least the largest size): reused instead of generating one")
    args = ap.parse_args(argv)
    # public on purpose: synthetic data only
    os.environ.setdefault("ESCALATION_RISK_PSEUDONYM_KEY", "benchmark-only pseudonym key: public, synthetic data")

    from escalation_risk.synth import iter_province, write_province
    sizes = sorted(int(x) for x in args.districts.split(","))
    if args.render_from:
        render_from(args)
        return
    skip_local = {int(x) for x in args.skip_local_at.split(",") if x}
    tmp = Path(tempfile.mkdtemp(prefix="er-province-", dir=args.tmp))
    load_start = os.getloadavg()
    try:
        t0 = time.perf_counter()
        if args.province_dir:
            full = Path(args.province_dir)
            generate_s = float("nan")
        else:
            print(f"  … generate {sizes[-1]} districts of {args.persons:,}", file=sys.stderr, flush=True)
            full = tmp / "province"
            # one district at a time: only the previous district is held while generating
            write_province(iter_province(sizes[-1], args.persons, seed=args.seed), full)
            generate_s = time.perf_counter() - t0
        print(f"    {generate_s:.0f} s", file=sys.stderr, flush=True)
        codes = sorted(p.name for p in full.iterdir() if p.is_dir())
        if len(codes) < sizes[-1]:
            raise SystemExit(f"{full} holds {len(codes)} districts, fewer than {sizes[-1]}")

        def province_of(n: int) -> Path:
            if n == len(codes):
                return full
            sub = tmp / f"province-{n}"
            sub.mkdir(exist_ok=True)
            for c in codes[:n]:
                if not (sub / c).exists():
                    (sub / c).symlink_to(full / c, target_is_directory=True)
            return sub

        sys.path.insert(0, str(ROOT / "tests"))
        from spark_cluster import start_cluster  # the test suite's standalone cluster: master + 2 workers
        (tmp / "cluster").mkdir()
        cluster = start_cluster(tmp / "cluster")
        runs, train = [], None
        try:
            for n in sizes:
                prov = province_of(n)
                local = None if n in skip_local else _run_child("local", tmp, prov, args.model, args.night)
                spark = _run_child("spark", tmp, prov, args.model, args.night, cluster.master_url)
                runs.append((n, local, spark, None if local is None else compare(tmp, args.night), args.persons))
                Path(tmp / f"results-{n}.json").write_text(json.dumps(runs[-1], default=float), encoding="utf-8")
                if n == args.train_districts:
                    train = {"districts": n, "cutoff": args.cutoff,
                             "spark": _run_train("spark", tmp, prov, args.cutoff, cluster.master_url,
                                                 args.max_points),
                             "local": _run_train("local", tmp, prov, args.cutoff, "", args.max_points)}
                    Path(tmp / "results-train.json").write_text(json.dumps(train, default=float), encoding="utf-8")
        finally:
            cluster.stop()
        meta = {"persons": args.persons, "seed": args.seed, "night": args.night, "max_districts": sizes[-1],
                "model": Path(args.model).name, "git": B.git_rev(),
                "generated": (f"generated before and reused ({full})" if args.province_dir
                              else f"generated in {generate_s:.0f} s"),
                "date": B.utc_now(), "machine": B.machine(),
                "load_start": f"{load_start[0]:.1f}", "load_end": f"{os.getloadavg()[0]:.1f}"}
        section = render(meta, runs, train)
        print(section)
        if args.out:
            B.write_section(Path(args.out), section, MARKER)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
