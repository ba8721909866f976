#!/usr/bin/env python
"""Exactly once under real concurrency: two deliverers racing, and nights killed mid-write.

    python benchmarks/delivery.py [--messages 1000] [--kills 10] [--disputes 400] [--backends sqlite,postgresql]

For each backend (SQLite file; PostgreSQL on a throwaway server started as in tests/pg.py):

- **race**: ``--messages`` pending messages; two deliverer processes (tests/procs.py
  ``deliver``) started together against a receiver on 127.0.0.1 that verifies each
  signature (Standard Webhooks) and counts each ``webhook-id``. Reports requests received,
  distinct ids, duplicates, each deliverer's share and the wall time.
- **kills**: a night process (three nights of two districts, ``--disputes`` each, with
  their messages queued) SIGKILLed at ``--kills`` seeded random points in its run, then
  re-run; the store is compared with a clean run's, table by table, by what rows say
  (not their row numbers or wall-clock times). Reports points tried, points that hit a
  live process, and stores that differ.

Prints one markdown section (paste it into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
sys.path[:0] = [str(HERE.parent / "src"), str(TESTS)]

from pg import PostgresServer, _bindir  # noqa: E402
from test_processes import CountingReceiver, finish, kill_and_rerun, queue_messages, spawn, wait_line  # noqa: E402

SEED = 25


def race(url: str, messages: int, folder: Path) -> dict:
    ids = queue_messages(url, messages)
    receiver = CountingReceiver()
    go = folder / f"go-{time.monotonic_ns()}"
    try:
        procs = [spawn("deliver", url, receiver.url, 600, go) for _ in range(2)]
        for p in procs:
            wait_line(p, "ready")
        t0 = time.perf_counter()
        go.touch()
        reports = [finish(p) for p in procs]
        took = time.perf_counter() - t0
    finally:
        receiver.close()
    received = sum(receiver.ids.values())
    return {"queued": len(ids), "received": received, "distinct": len(receiver.ids),
            "duplicates": received - len(receiver.ids), "unknown": len(set(receiver.ids) - set(ids)),
            "bad_signatures": receiver.bad, "shares": [r["delivered"] for r in reports], "seconds": took}


def kills(new_url, points: int, disputes: int) -> dict:
    took, done = kill_and_rerun(new_url, points, disputes)
    return {"tried": points, "hit_live": sum(alive for _, alive, _, _ in done),
            "differ": sum(not equal for *_, equal in done), "clean_seconds": took,
            "nights_done_at_kill": [recorded for _, _, recorded, _ in done]}


def _sqlite_url(folder: Path, made: Iterator[int]) -> str:
    return f"sqlite:///{folder / f'alerts-{next(made)}.db'}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--disputes", type=int, default=400)
    ap.add_argument("--backends", default="sqlite,postgresql")
    args = ap.parse_args()
    load0 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory(prefix="er-bench-delivery-") as tmp:
        folder = Path(tmp)
        for backend in args.backends.split(","):
            server = None
            if backend == "sqlite":
                new_url = functools.partial(_sqlite_url, folder, itertools.count())
            else:
                bindir = _bindir()
                if bindir is None:
                    raise SystemExit("PostgreSQL server binaries not found: run scripts/ensure-java-postgres.sh")
                server = PostgresServer(bindir)
                server.start()
                new_url = server.create_database
            try:
                r = race(new_url(), args.messages, folder)
                k = kills(new_url, args.kills, args.disputes)
            finally:
                if server is not None:
                    server.stop()
            rows.append((backend, r, k))
    load1 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"### Delivery and kills ({time.strftime('%Y-%m-%d')}, `benchmarks/delivery.py --messages "
          f"{args.messages} --kills {args.kills} --disputes {args.disputes}`)\n")
    print(f"Load at start: `{load0}`; at end: `{load1}`.\n")
    print("| backend | pending | requests received | distinct ids | duplicates | bad signatures | "
          "deliverer shares | race wall s | kill points tried | hit a live night | stores differing |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for backend, r, k in rows:
        print(f"| {backend} | {r['queued']} | {r['received']} | {r['distinct']} | {r['duplicates']} | "
              f"{r['bad_signatures']} | {' + '.join(map(str, r['shares']))} | {r['seconds']:.1f} | {k['tried']} | "
              f"{k['hit_live']} | {k['differ']} |")
    print()
    for backend, _, k in rows:
        print(f"- {backend}: clean run of the three nights {k['clean_seconds']:.1f} s; nights recorded when "
              f"killed: {k['nights_done_at_kill']}")


if __name__ == "__main__":
    main()
