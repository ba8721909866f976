"""The night's record step alone: one night's scores recorded into a fresh store, best of N.

Reads a night's scores CSV (e.g. a 1M night's ``out/scores-*.csv`` from ``/tmp/night1m.sh``),
applies the trend against an empty store (as a first night does) and times
``AlertStore.record_night`` into a fresh SQLite file and, with ``--pg``, a fresh database on a
throwaway PostgreSQL server (``tests/pg.py``). Prints wall and CPU seconds per run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from escalation_risk.alerts import AlertStore
from escalation_risk.province import apply_trend


def _scores(path: Path) -> tuple[pd.DataFrame, pd.Timestamp]:
    df = pd.read_csv(path, dtype={"dispute_id": str, "plan": str})
    night = pd.Timestamp(df["as_of"].iloc[0])
    # The night hands lists, not JSON text, to the store.
    for col in ("reasons", "reasons_zh"):
        df[col] = [json.loads(v) if isinstance(v, str) else [] for v in df[col]]
    df = df.drop(columns=["trend", "delta", "reason_features"], errors="ignore")
    return apply_trend(df, None), night


def _once(url: str, scores: pd.DataFrame, night: pd.Timestamp) -> tuple[float, float, str]:
    with AlertStore(url) as st:
        w, c = time.perf_counter(), time.process_time()
        s = st.record_night(scores, night, "bench", input_fingerprint="f" * 64)
        return time.perf_counter() - w, time.process_time() - c, str(s)


def main(argv: list[str] | None = None) -> None:
    """Time the record step: ``record.py SCORES_CSV [--runs N] [--pg]``."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("scores", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pg", action="store_true", help="also on a throwaway PostgreSQL server")
    args = ap.parse_args(argv)
    scores, night = _scores(args.scores)
    urls: list[tuple[str, object]] = []
    server = None
    if args.pg:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from pg import PostgresServer, _bindir  # type: ignore[import-not-found]
        bindir = _bindir()
        assert bindir is not None, "PostgreSQL binaries not found"
        server = PostgresServer(bindir)
        server.start()
    try:
        for backend in ("sqlite", "postgresql") if server else ("sqlite",):
            times = []
            for _ in range(args.runs):
                with tempfile.TemporaryDirectory(prefix="er-rec-") as tmp:
                    if backend == "sqlite":
                        url = f"sqlite:///{tmp}/alerts.db"
                    else:
                        assert server is not None
                        url = server.create_database()
                    times.append(_once(url, scores, night))
                urls.append((backend, url))
            best = min(times)
            print(f"record {backend}: best wall {best[0]:.2f} s, cpu {best[1]:.2f} s "
                  f"(runs wall {[round(t[0], 2) for t in times]}) :: {best[2]}", flush=True)
    finally:
        if server is not None:
            server.stop()
    print(open("/proc/loadavg").read().strip())


if __name__ == "__main__":
    main()
