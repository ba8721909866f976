#!/usr/bin/env python
"""The service's day: ``Scorer.add`` one dispute at a time, with calls in between.

    python benchmarks/adds.py --persons 1000000 --data /tmp/er-scale/d1m   # reuses a generated district

Loads a district (generated once with the package's generator, seed 0, linkage noise
0.25, and kept in ``--data`` for the next run), builds a Scorer, then adds ``--adds``
new disputes one call each (the dispute, its parties, a failed mediation; the parties
are the people of an open dispute of the history, so their whole history is touched;
every ``--touch``-th add also mediates an existing dispute, which re-reads it),
and after every ``--block`` adds times ``--calls`` warm ``score_dispute`` calls of
disputes the history never saw. Prints the add latency (p50, p90, p99, max), the
score_dispute p99 per block and the compactions of the index's delta, plus ``uptime``
at start and end (the machine is shared). ``--check`` compares the grown index's
features with an index built from scratch on the same history (parity).

Not part of the test suite; figures go into BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
os.environ.setdefault("ESCALATION_RISK_PSEUDONYM_KEY_FILE", str(HERE.parent / "data" / "sample" / "SAMPLE_KEY"))
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from run import score_requests  # noqa: E402

import escalation_risk as er  # noqa: E402
from escalation_risk import collector  # noqa: E402
from escalation_risk.model.points import open_points  # noqa: E402
from escalation_risk.synth import generate_tables, write_tables  # noqa: E402


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def load() -> str:
    return "load " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def namesake(pid: str, id_number: str | None, phone: str) -> dict:
    """A person record of one made-up name and birth year: two such records with different
    identifiers are two people until a third carries the id number of one and the phone
    of the other (benchmark --link-at)."""
    return {"person_id": pid, "birth_year": 1980, "gender": "male", "hukou": "local", "employment": "employed",
            "name": "欧阳明远", "id_number": id_number, "phone": phone}


def district(persons: int, data: Path) -> Path:
    """The cached district in ``data`` (generated there on first use)."""
    if not (data / "incidents.parquet").exists():
        t0 = time.perf_counter()
        tables, truth = generate_tables(persons, seed=0, linkage_noise=0.25)
        write_tables(tables, data, "parquet", truth=truth)
        er.dataset.mark_synthetic(data)  # generated here: the sample key may read it
        print(f"generated {persons:,} persons into {data} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return data


def add_rows(d: dict, ps: list[dict], new_id: str, night: pd.Timestamp, old: str | None = None) -> dict:
    """One dispute with its parties and a failed mediation; with ``old``, also a failed
    mediation of that existing dispute (which re-reads it: its events leave the base)."""
    meds = [{"mediation_id": f"M{new_id}", "incident_id": new_id, "held_at": night,
             "mediator_type": "grid_worker", "outcome": "failed"}]
    if old is not None:
        meds.append({"mediation_id": f"MO{new_id}", "incident_id": old, "held_at": night,
                     "mediator_type": "court", "outcome": "failed"})
    return {"incidents": [{**d, "incident_id": new_id, "reported_at": night, "occurred_at": night}],
            "incident_parties": [{**p, "incident_id": new_id, "added_at": None} for p in ps], "mediations": meds}


class SlowSampler:
    """Samples the adding thread's stack every ``every`` s while one add has run longer than
    ``after`` s: where a slow add spends its time, measured, at no cost to the others."""

    def __init__(self, after: float = 1.0, every: float = 0.05):
        self.after, self.every = after, every
        self.started: float | None = None
        self.thread_id = threading.get_ident()
        self.samples: collections.Counter = collections.Counter()
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            t = self.started
            if t is None or time.perf_counter() - t < self.after:
                continue
            frame = sys._current_frames().get(self.thread_id)
            if frame is not None:
                stack = traceback.extract_stack(frame)
                self.samples[tuple(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in stack[-14:])] += 1

    def report(self, top: int = 6) -> str:
        lines = []
        for stack, n in self.samples.most_common(top):
            lines.append(f"  {n} samples ({n * self.every:.1f} s):\n    " + "\n    ".join(stack))
        self.samples.clear()
        return "\n".join(lines)


class GilWatch:
    """While a background job of the scorer runs, a thread asks to wake every millisecond;
    a wake-up late by more than ``late`` s means another thread held the GIL that long. The
    job thread's line right after (where its C call returned) is charged the delay: where
    the job holds the GIL, measured from outside it."""

    def __init__(self, scorer, late: float = 0.004):
        self.scorer, self.late = scorer, late
        self.charged: collections.Counter = collections.Counter()
        self.hits: collections.Counter = collections.Counter()
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.is_set():
            job = self.scorer._job
            if job is None:  # nothing to watch: stay out of the way
                self.stop.wait(0.05)
                continue
            t = time.perf_counter()
            time.sleep(0.001)
            late = time.perf_counter() - t - 0.001
            if job is None or job.thread is None or late < self.late:
                continue
            frame = sys._current_frames().get(job.thread.ident)
            if frame is not None:
                where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}"
                                    for f in reversed(traceback.extract_stack(frame)[-4:]))
                self.charged[where] += late
                self.hits[where] += 1

    def report(self, top: int = 12) -> str:
        total = sum(self.charged.values())
        lines = [f"  GIL held by the job (waits over {self.late * 1e3:.0f} ms): {total:.1f} s in "
                 f"{sum(self.hits.values())} waits"]
        for where, v in self.charged.most_common(top):
            lines.append(f"  {v:6.2f} s {self.hits[where]:5d} waits  {where}")
        return "\n".join(lines)


def phase_timers() -> collections.Counter:
    """CPU seconds (``thread_time``) spent in the main steps of an add, by step, accumulated
    by wrapping them (``--phases``; the wrappers cost a few per cent)."""
    import functools

    from escalation_risk import scoring
    from escalation_risk.dataset import Dataset
    from escalation_risk.features import delta, grown_persons, index_append

    acc: collections.Counter = collections.Counter()

    def wrap(owner, name: str, label: str) -> None:
        f = getattr(owner, name)

        @functools.wraps(f)
        def timed(*a, **k):
            c = time.thread_time()
            try:
                return f(*a, **k)
            finally:
                acc[label] += time.thread_time() - c
        setattr(owner, name, timed)

    wrap(scoring, "_context", "context (the history's rows the new rows name)")
    wrap(Dataset, "append", "validating the rows (Dataset.append)")
    wrap(scoring, "append_to_index", "append_to_index (all)")
    wrap(index_append, "HistoryIndex", "  the small HistoryIndex")
    wrap(grown_persons, "link_new", "  incremental linkage (link_new)")
    wrap(delta.Stacked, "rows", "rows read by position (Stacked.rows)")
    wrap(index_append, "_edit", "  timeline edits (_edit)")
    wrap(index_append.IdIndex, "get_indexer", "id look-ups (IdIndex.get_indexer)")
    return acc


def _figures(wall: list[float], cpu: list[float]) -> str:
    w, c = np.array(wall) * 1e3, np.array(cpu) * 1e3
    return (f"wall p50 {np.percentile(w, 50):.1f} p99 {np.percentile(w, 99):.1f} max {w.max():.1f} ms, "
            f"CPU p50 {np.percentile(c, 50):.1f} p99 {np.percentile(c, 99):.1f} ms")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--data", default=None, help="district folder (generated there when missing)")
    ap.add_argument("--model", default=str(HERE.parent / "models" / "default"))
    ap.add_argument("--adds", type=int, default=1000)
    ap.add_argument("--block", type=int, default=100)
    ap.add_argument("--calls", type=int, default=200, help="timed score_dispute calls per block")
    ap.add_argument("--touch", type=int, default=10, help="every N-th add also mediates an existing dispute (0: none)")
    ap.add_argument("--fold", default="background", choices=("background", "inline", "never"),
                    help="Scorer(fold=...): where folds and rebuilds run")
    ap.add_argument("--link-at", type=int, default=None, help="add two namesakes with that add, and 10 adds "
                    "later a record linking them (the index is rebuilt: in the background by default)")
    ap.add_argument("--new-every", type=int, default=0, help="every N-th add brings a person record (0: none): "
                    "alternately a new person (a namesake of a known one, a fresh id number and phone) and a "
                    "record of a known person under a new person_id; the record is the dispute's first party")
    ap.add_argument("--slow", type=float, default=1.0, help="adds slower than this (s, wall) are reported "
                    "with samples of their stack")
    ap.add_argument("--phases", action="store_true", help="CPU per add of its main steps, per block")
    ap.add_argument("--no-yield", action="store_true", help="background jobs do not yield to score_dispute "
                    "calls (scoring.YIELD_TO_CALLS off: the behaviour before it)")
    ap.add_argument("--rebuild-in-thread", action="store_true", help="a background rebuild runs on the job thread "
                    "(scoring.REBUILD_APART off: the behaviour before the forked rebuild)")
    ap.add_argument("--gil", action="store_true", help="where a background job holds the GIL (GilWatch)")
    ap.add_argument("--no-freeze", action="store_true", help="leave the loaded history in the collector's "
                    "sight (the server freezes it: escalation_risk.collector)")
    ap.add_argument("--check", action="store_true", help="parity of the grown index with a rebuild")
    ap.add_argument("--profile", default=None, help="cProfile the adds that bring a person record into this "
                    "file (pstats), and print their top functions")
    args = ap.parse_args(argv)
    print("load at start:", uptime())
    import logging

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    logging.getLogger("escalation_risk.scoring").addHandler(handler)  # the rebuild's steps (INFO)
    logging.getLogger("escalation_risk.scoring").setLevel(logging.INFO)
    if args.no_yield or args.rebuild_in_thread:
        from escalation_risk import scoring

        scoring.YIELD_TO_CALLS = not args.no_yield
        scoring.REBUILD_APART = not args.rebuild_in_thread
    data = district(args.persons, Path(args.data or f"/tmp/er-bench-district-{args.persons}"))
    model = er.load_model(args.model)
    t0 = time.perf_counter()
    ds = er.load_dataset(data, errors="quarantine")
    t_load = time.perf_counter() - t0
    night = pd.Timestamp(ds.incidents["reported_at"].max()).normalize()
    t0 = time.perf_counter()
    scorer = er.Scorer(model, ds, fold=args.fold)
    t_index = time.perf_counter() - t0
    print(f"{len(ds.persons):,} person records; load {t_load:.1f} s, Scorer (index) {t_index:.1f} s")
    reqs = score_requests(ds, night, args.adds + args.calls + 50, 1)
    calls, adds = reqs[: args.calls + 50], reqs[args.calls + 50:]
    # Every --touch-th add also mediates an existing open dispute of the history.
    open_ids = open_points(ds, night)["dispute_id"].to_numpy(dtype=object)
    olds = np.random.default_rng(2).choice(open_ids, size=len(adds))
    raw = None
    if args.new_every:
        import pyarrow.parquet as pq

        cols = ["person_id", "birth_year", "gender", "hukou", "employment", "name", "id_number", "phone"]
        from escalation_risk.idnumbers import valid_ids, valid_mobiles

        raw = pq.read_table(data / "persons.parquet", columns=cols).to_pandas()
        # Only records an add accepts: at linkage noise 0.25 some raw records carry a malformed id
        # number or phone, which the loader sets to missing (reported) and an add refuses
        # (errors="raise"); re-adding one stopped the run at its first such draw.
        ok = np.ones(len(raw), bool)
        for col, valid in (("id_number", valid_ids), ("phone", valid_mobiles)):
            present = raw[col].notna().to_numpy()
            ok[present] &= np.asarray(valid(raw[col].to_numpy(dtype=object)[present]), bool)
        raw = raw[ok]
        raw = raw.iloc[np.random.default_rng(3).choice(len(raw), args.adds // args.new_every + 1, replace=False)]
        raw = raw.reset_index(drop=True)
    del ds
    if not args.no_freeze:
        # As `escalation-risk serve` does once its Scorer is built (escalation_risk.collector):
        # without it, each full collection walks the imported modules and the history inside some call.
        collector.freeze_loaded()
    print(f"collector: {'loaded history frozen, as the server does' if collector.frozen() else 'nothing frozen'}")

    def p99_block() -> str:
        lat, cpu = [], []
        for i, (d, ps) in enumerate(calls):
            t, c = time.perf_counter(), time.thread_time()
            scorer.score_dispute(d, ps, as_of=night)
            if i >= 50:
                lat.append(time.perf_counter() - t)
                cpu.append(time.thread_time() - c)
        return _figures(lat, cpu)

    print(f"score_dispute before adds: {p99_block()}")
    phases = phase_timers() if args.phases else None
    times, cpus = [], []
    from escalation_risk.idnumbers import gb11643_check_digit

    idn = "33010219800312457" + gb11643_check_digit("33010219800312457")
    t_link = None
    by_kind: dict[str, tuple[list[float], list[float]]] = {}
    during: tuple[list[float], list[float]] = ([], [])
    phases_of: dict[str, tuple[list[float], list[float]]] = {}  # the calls during a rebuild, by what it was doing

    def call_during(d2, ps2) -> None:
        job = scorer._job
        phase = getattr(job, "phase", "?") if job is not None else "publishing"
        t2, c2 = time.perf_counter(), time.thread_time()
        scorer.score_dispute(d2, ps2, as_of=night)
        wall, cpu = time.perf_counter() - t2, time.thread_time() - c2
        for w, c in (during, phases_of.setdefault(phase, ([], []))):
            w.append(wall)
            c.append(cpu)
    sampler = SlowSampler(args.slow)
    gil = GilWatch(scorer) if args.gil else None
    prof = None
    if args.profile:
        import cProfile

        prof = cProfile.Profile(time.thread_time)  # CPU of the adding thread: wall says the machine's load
    p0 = time.process_time()
    for j, (d, ps) in enumerate(adds):
        old = olds[j] if args.touch and j % args.touch == 0 else None
        rows = add_rows(d, ps, f"ADD-{j:06d}", night, old)
        kind = "known people only"
        if raw is not None and j % args.new_every == args.new_every - 1:
            rec = raw.iloc[j // args.new_every].to_dict()
            if (j // args.new_every) % 2 == 0:
                kind = "a new person"
                stem = f"{110101 + j % 97:06d}{int(rec['birth_year'] or 1980):04d}0101{j % 1000:03d}"
                rec.update(person_id=f"NEW-{j:06d}", id_number=stem + gb11643_check_digit(stem),
                           phone=f"199{j:08d}")
            else:
                kind = "a known person's new record"
                rec.update(person_id=f"DUP-{j:06d}")
            rows["persons"] = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in rec.items()}]
            rows["incident_parties"][0]["party_id"] = rec["person_id"]
        if args.link_at is not None and j == args.link_at:
            rows["persons"] = [namesake("LINK-A", idn, "13912345671"), namesake("LINK-B", None, "13987654322")]
        if args.link_at is not None and j == args.link_at + 10:
            rows["persons"] = [namesake("LINK-R", idn, "13987654322")]
            t_link, pending_adds = time.perf_counter(), []
        folds, rebuilds = scorer.folds, getattr(scorer, "rebuilds", None)
        pending_before = scorer.pending_adds
        t, c = time.perf_counter(), time.thread_time()
        sampler.started = t
        if prof is not None and "persons" in rows:
            prof.enable()
            scorer.add(**rows)
            prof.disable()
        else:
            scorer.add(**rows)
        sampler.started = None
        times.append(time.perf_counter() - t)
        cpus.append(time.thread_time() - c)
        if pending_before or scorer.pending_adds:  # validated only: linked and indexed by the rebuild's catch-up
            kind += ", while a rebuild is pending"
        by_kind.setdefault(kind, ([], []))
        by_kind[kind][0].append(times[-1])
        by_kind[kind][1].append(cpus[-1])
        if args.link_at is not None and j == args.link_at + 10:
            print(f"add {j} links two known people: wall {times[-1] * 1e3:.1f} ms, CPU {cpus[-1] * 1e3:.1f} ms; "
                  f"{scorer.pending_adds} add(s) pending a rebuild")
        elif args.link_at is not None and j > args.link_at + 10 and t_link is not None:
            pending_adds.append(j)
            if not scorer.pending_adds:
                print(f"rebuild published {time.perf_counter() - t_link:.1f} s after the linking add; "
                      f"{len(pending_adds) - 1} adds accepted meanwhile: "
                      f"{_figures(times[-len(pending_adds):-1] or [0], cpus[-len(pending_adds):-1] or [0])}")
                t_link = None
        if scorer.pending_adds:  # a rebuild runs: calls meanwhile (wall and CPU), five per add
            for d2, ps2 in calls[50:55]:
                call_during(d2, ps2)
        if times[-1] > args.slow:
            print(f"slow add {j}: wall {times[-1]:.2f} s, CPU {cpus[-1]:.2f} s, folds {folds} -> {scorer.folds}, "
                  f"rebuilds {rebuilds} -> {getattr(scorer, 'rebuilds', None)}; where (stack samples):\n"
                  f"{sampler.report()}")
        if (j + 1) % args.block == 0:
            print(f"after {j + 1:5d} adds: add {_figures(times[-args.block:], cpus[-args.block:])}; "
                  f"index delta {scorer.delta_size():,} events; score_dispute {p99_block()}  [{load()}]")
            if phases is not None:
                for label, v in sorted(phases.items(), key=lambda x: -x[1]):
                    print(f"    {label:50s} {v / args.block * 1e3:6.2f} ms/add")
                phases.clear()
    if t_link is not None:
        pending = scorer.pending_adds
        while scorer.pending_adds:  # the rebuild outlasts the adds: calls go on until it is published
            for d2, ps2 in calls[50:55]:
                call_during(d2, ps2)
            time.sleep(0.02)
        scorer.wait_for_fold()
        print(f"rebuild published {time.perf_counter() - t_link:.1f} s after the linking add, after the last add "
              f"({pending} adds were pending; {len(pending_adds)} accepted after the linking add: "
              f"{_figures(times[-len(pending_adds):] or [0], cpus[-len(pending_adds):] or [0])})")
    print(f"{len(times)} adds: {_figures(times, cpus)}; first add wall {times[0] * 1e3:.0f} ms CPU "
          f"{cpus[0] * 1e3:.0f} ms; process CPU over the adds and blocks (fold threads included) "
          f"{time.process_time() - p0:.1f} s; folds {scorer.folds}, rebuilds {getattr(scorer, 'rebuilds', None)}; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB, "
          f"RSS now {int(Path('/proc/self/statm').read_text().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**30:.2f} GB")
    if during[0]:
        print(f"score_dispute while a rebuild ran ({len(during[0])} calls): {_figures(*during)}")
        for phase, (w, c) in phases_of.items():
            print(f"  while its job was at {phase} ({len(w)} calls): {_figures(w, c)}")
    for kind, (w, c) in by_kind.items():
        print(f"  adds bringing {kind} ({len(w)}): {_figures(w, c)}")
    sampler.stop.set()
    if prof is not None:
        import io
        import pstats

        prof.dump_stats(args.profile)
        for key in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats(key).print_stats(30)
            print(f"profile of the person adds by {key}:\n" + out.getvalue().split("\n", 6)[-1])
    if gil is not None:
        gil.stop.set()
        print(gil.report())
    if args.check:
        from escalation_risk.features import build_features

        grown = scorer.history
        fresh = er.Dataset(**grown.tables())
        pts = open_points(grown, night)
        pts = pts[pts["dispute_id"].str.startswith("ADD-")].reset_index(drop=True)
        pd.testing.assert_frame_equal(build_features(grown, pts), build_features(fresh, pts))
        print(f"parity: features of {len(pts):,} added disputes equal a rebuilt index's")
    print("load at end:", uptime())


if __name__ == "__main__":
    main()
