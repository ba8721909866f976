#!/usr/bin/env python
"""Province benchmark: the same night on the local engine and on a standalone Spark cluster.

    python benchmarks/run.py --province                        # 4 districts of 5,000 persons
    python benchmarks/province.py --province --districts 3 --persons 20000

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
Written into BENCHMARKS.md between ``<!-- run province -->`` markers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))


def _vmhwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


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


def child(engine: str, province: str, model: str, night: str, store: str, out: str, result: str,
          master: str = "") -> None:
    """One night in this (fresh) process; writes what it measured as JSON to ``result``."""
    t_start = time.perf_counter()
    from escalation_risk import province as P
    spark = None
    jvm_pid = None
    t_session = 0.0
    if engine == "spark":
        from escalation_risk import spark as S
        t0 = time.perf_counter()
        spark = S.session(master)
        t_session = time.perf_counter() - t0
        jvm_pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
    t0 = time.perf_counter()
    rep = P.run_province_night(province, model, night, store=f"sqlite:///{store}", out_dir=out, engine=engine,
                               spark=spark)
    t_night = time.perf_counter() - t0
    res = {
        "engine": engine, "master": master, "night_s": t_night, "session_s": t_session,
        "process_s": time.perf_counter() - t_start, "seconds": rep.seconds,
        "driver_python_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "jvm_peak_mb": _vmhwm_kb(jvm_pid) / 1024 if jvm_pid else None,
        "tasks": rep.tasks.to_dict(orient="list"), "scored": len(rep.scores),
        "alerts": sum(s.new_alerts for s in rep.summaries.values()), "cross_people": rep.cross_people,
    }
    if spark is not None:
        res["collected"] = dict(S.COLLECTED)
        res["executor_jvm_peak_mb"] = _executor_jvm_peaks_mb(spark.sparkContext.applicationId)
        spark.stop()
    Path(result).write_text(json.dumps(res, default=float), encoding="utf-8")


def _run_child(engine: str, tmp: Path, province: Path, model: str, night: str, master: str = "") -> dict:
    out = tmp / f"out-{engine}"
    result = tmp / f"{engine}.json"
    cmd = [sys.executable, str(HERE / "province.py"), "--_child", engine, str(province), model, night,
           str(tmp / f"{engine}.db"), str(out), str(result), master]
    print(f"  … {engine} night {master}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, timeout=7200)
    res = json.loads(result.read_text(encoding="utf-8"))
    res["wall_s"] = time.perf_counter() - t0
    print(f"    {res['night_s']:.1f} s night, {res['wall_s']:.1f} s process", file=sys.stderr, flush=True)
    return res


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


def render(meta: dict, local: dict, spark: dict, cmp: dict) -> str:
    ok = cmp["same_rows"] and cmp["max_abs_diff"] <= 1e-9 and cmp["other_columns_equal"] and cmp["alerts_equal"]
    n = meta["districts"]
    col = spark["collected"]
    ls, ss = local["seconds"], spark["seconds"]
    lines = [
        f"### Province: {n} districts of {meta['persons']:,} persons, local engine and a standalone cluster "
        f"(seed {meta['seed']}, night {meta['night']})",
        "",
        f"{meta['date']}, git {meta['git']}, {meta['machine']}; load average at start {meta['load_start']}, "
        f"at end {meta['load_end']} (a machine shared with other engineers: times are inflated and noisy). "
        f"Province generated and written in {meta['generate_s']:.0f} s; {local['cross_people']:,} people seen "
        f"in two districts; model `{meta['model']}`. Spark: a master and two workers of one core and 1 GB each "
        f"(`spark-class`, as in `tests/spark_cluster.py`), executors of 1 GB, driver `spark.driver.memory` 2g.",
        "",
        "| | local engine | spark engine, 2-worker standalone cluster |",
        "|---|---|---|",
        f"| night (run_province_night) | {local['night_s']:.1f} s | {spark['night_s']:.1f} s "
        f"(+ session start {spark['session_s']:.1f} s) |",
        *(f"| of which {k} | {ls.get(k, 0):.1f} s | {ss.get(k, 0):.1f} s |"
          for k in ("load", "link", "score", "record")),
        f"| process end to end (with imports) | {local['wall_s']:.1f} s | {spark['wall_s']:.1f} s |",
        f"| driver peak memory | {local['driver_python_peak_mb']:,.0f} MB (the one process) | "
        f"Python {spark['driver_python_peak_mb']:,.0f} MB + JVM {spark['jvm_peak_mb']:,.0f} MB |",
        f"| district score task, seconds (min / mean / max) | {_mmm(local['tasks']['seconds'])} "
        f"(scoring only: the district is loaded already) | {_mmm(spark['tasks']['seconds'])} (the whole "
        "task: read the folder and the cross-district files, score, drift, write Parquet) |",
        f"| district task memory (peak RSS of the process running it, MB) | "
        f"{_mmm(local['tasks']['peak_rss_mb'], ',.0f')} (the driver itself) | "
        f"Python worker {_mmm(spark['tasks']['peak_rss_mb'], ',.0f')}; executor JVMs "
        f"{', '.join(format(x, ',.0f') for x in spark['executor_jvm_peak_mb']) or 'n/a'} |",
        f"| bytes collected to the driver | everything (one process) | task rows {col['bytes']:,} B "
        f"({col['bytes'] / n:,.0f} B per district); score files read back to record: "
        f"{col['scores_bytes']:,} B ({col['scores_bytes'] / n:,.0f} B per district) |",
        f"| scored, alerts | {local['scored']:,}, {cmp['alerts_local']:,} | {spark['scored']:,}, "
        f"{cmp['alerts_spark']:,} |",
        "",
        f"Same night: {'yes' if ok else 'NO'} — {cmp['rows']:,} scores, same (district, dispute) rows "
        f"{cmp['same_rows']}, max |Δp| {cmp['max_abs_diff']:.1e} (target ≤ 1e-9), other columns equal "
        f"{cmp['other_columns_equal']}, alerts equal {cmp['alerts_equal']}.",
        "",
    ]
    # Districts this small are all fixed cost (imports, model, drift sample): scaling them
    # by 140x says nothing. The projection starts from the district-size runs above instead.
    a = ANCHOR_1M
    f = 700_000 / 1_000_000
    load, score, rec = a["load_s"] * f, a["score_s"] * f, a["record_s"] * f
    link_one_task = a["link_s"] * 63  # 63 M records in one task, if it were linear and fitted
    fixed = spark["session_s"] + ss.get("link", 0)  # Spark's own fixed cost, measured here (loaded machine)
    lines += [
        "**Projection, not a measurement**, to 90 districts of 700,000 people (63 M), on N executors of one "
        "core and at least 5 GB. The districts above are too small to scale from (fixed costs dominate), so "
        f"it starts from the 1,000,000-person district night measured above ({a['night_s']:.0f} s, "
        f"{a['peak_gb']:.1f} GB: load {a['load_s']:.0f} s, score {a['score_s']:.0f} s, record "
        f"{a['record_s']:.1f} s) and the 1,035,000-record linkage ({a['link_s']:.1f} s), taken as linear in "
        f"people: per 700,000-person district, load {load:.0f} s, score {score:.0f} s, record {rec:.1f} s. "
        "On Spark each district is read by its load task, its score task and (when it shares people) its "
        "history task: ⌈90/N⌉ × (3 × load + score), plus the province linkage in one task "
        f"(≈ {link_one_task / 60:.0f} min), plus the driver recording 90 districts one after another "
        f"(≈ {90 * rec / 60:.0f} min), plus Spark's fixed cost measured here ({fixed:.0f} s):",
        "",
        "| executors N | projected night | of which the serial part (linkage, recording, fixed) |",
        "|---|---|---|",
    ]
    serial = link_one_task + 90 * rec + fixed
    for e in (10, 30, 90):
        t = math.ceil(90 / e) * (3 * load + score) + serial
        lines.append(f"| {e} | {t / 60:,.0f} min | {serial / 60:,.0f} min |")
    lines += [
        "",
        "What this leaves out, honestly: the province linkage runs as ONE Spark task over every person's "
        f"keys; at 63 M records its keys frame alone is about {a['keys_gb'] * 63:.0f} GB, which fits no "
        "executor: before that size the linkage must itself be spread (blocking keys grouped in Spark, pairs "
        "scored per block, components joined), which this branch does not do. A score task at 700,000 "
        f"people needs about {a['peak_gb'] * f:.1f} GB. The driver holds no district (task rows, "
        f"{col['bytes'] / n:,.0f} B per district here, and one district's scores while recording it), but "
        "the night's report and scores CSV still concatenate every district's scores on the driver "
        f"(≈ {a['open'] * f * 90 / 1e6:.0f} M rows at that size): flat in districts it is not yet.",
    ]
    return "\n".join(lines)


def write_markdown(path: Path, section: str) -> None:
    begin, end = "<!-- run province -->", "<!-- /run province -->"
    block = f"{begin}\n{section}\n{end}\n"
    text = path.read_text(encoding="utf-8")
    if begin in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", lambda _m: block, text, flags=re.S)
    else:
        runs = text.find("\n## Runs")
        nxt = text.find("\n## ", runs + 1) if runs >= 0 else -1
        if nxt >= 0:
            text = text[:nxt].rstrip("\n") + "\n\n" + block + text[nxt:]
        else:
            text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--_child":
        child(*argv[1:9])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--province", action="store_true", help="(the flag run.py dispatches on)")
    ap.add_argument("--districts", type=int, default=4)
    ap.add_argument("--persons", type=int, default=5_000, help="persons per district")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--night", default="2025-06-30")
    ap.add_argument("--model", default=str(ROOT / "models" / "default"))
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    # public on purpose: synthetic data only
    os.environ.setdefault("ESCALATION_RISK_PSEUDONYM_KEY", "benchmark-only pseudonym key: public, synthetic data")

    from escalation_risk.synth import iter_province, write_province
    tmp = Path(tempfile.mkdtemp(prefix="er-province-", dir=args.tmp))
    load_start = os.getloadavg()
    try:
        print(f"  … generate {args.districts} districts of {args.persons:,}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        province = tmp / "province"
        # one district at a time: only the previous district is held while generating
        write_province(iter_province(args.districts, args.persons, seed=args.seed), province)
        generate_s = time.perf_counter() - t0
        print(f"    {generate_s:.0f} s", file=sys.stderr, flush=True)
        local = _run_child("local", tmp, province, args.model, args.night)
        sys.path.insert(0, str(ROOT / "tests"))
        from spark_cluster import start_cluster  # the test suite's standalone cluster: master + 2 workers
        (tmp / "cluster").mkdir()
        cluster = start_cluster(tmp / "cluster")
        try:
            spark = _run_child("spark", tmp, province, args.model, args.night, cluster.master_url)
        finally:
            cluster.stop()
        cmp = compare(tmp, args.night)
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=ROOT).stdout.strip()
        meta = {"districts": args.districts, "persons": args.persons, "seed": args.seed, "night": args.night,
                "model": Path(args.model).name, "generate_s": generate_s, "git": git,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "machine": f"{os.cpu_count()} cores", "load_start": f"{load_start[0]:.1f}",
                "load_end": f"{os.getloadavg()[0]:.1f}"}
        section = render(meta, local, spark, cmp)
        print(section)
        Path(tmp / "results.json").write_text(json.dumps({"local": local, "spark": spark, "compare": cmp},
                                                         default=float), encoding="utf-8")
        if args.out:
            write_markdown(Path(args.out), section)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
