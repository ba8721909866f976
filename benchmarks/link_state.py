#!/usr/bin/env python
"""Incremental linkage after many person adds: the cost of one add with the records linked
since the state was built still pending in its delta, and after a fold merged them.

    python benchmarks/link_state.py --data /tmp/er-scale/d100k --adds 4000 --every 1000

Loads a generated district (seed 0, linkage noise 0.25), holds out ``--adds`` person
records (every n-th), links the rest with the full linkage, builds the linkage state
(``LinkState.build``) and links the held records one add at a time (``link_new``). Every
``--every`` adds it times ``--probe`` further adds (records of their own, not kept) three
ways: against the state as adds leave it (``delta``), against ``state.merged()`` (what
``fold_index`` now keeps) and, with ``--dense``, with the delta's term-frequency counts by a
values x records table (main before this change). Prints CPU ms per add (median), the
peak of numpy allocations per add (tracemalloc), the merge's CPU and the load average.

Not part of the test suite; figures go into BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
os.environ.setdefault("ESCALATION_RISK_PSEUDONYM_KEY_FILE", str(HERE.parent / "data" / "sample" / "SAMPLE_KEY"))
sys.path.insert(0, str(HERE.parent / "src"))

import escalation_risk as er  # noqa: E402
from escalation_risk.linking import DEFAULT_MODEL  # noqa: E402
from escalation_risk.linking.incremental import TF_KEYS, Frozen, LinkState, link_new  # noqa: E402
from escalation_risk.linking.linker import _link  # noqa: E402


def dense_counts(self: LinkState, field: int, values: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """The term-frequency counts as main computed them: a values x records table."""
    lo, hi = self.tf_values[field].range(values)
    d = getattr(self.delta, list(TF_KEYS.values())[field])
    return (hi - lo) + (values[:, None] == d[None, :]).sum(axis=1) + (values[:, None] == extra[None, :]).sum(axis=1)


def probe(state: LinkState, rows, counts=None) -> tuple[float, float]:
    """(median CPU ms, max peak MB of allocations) of linking each of ``rows`` alone."""
    real = LinkState._counts
    if counts is not None:
        LinkState._counts = counts  # type: ignore[method-assign]
    cpu, peak = [], []
    try:
        for r in rows:
            tracemalloc.start()
            t = time.process_time()
            link_new(state, r)
            cpu.append(time.process_time() - t)
            peak.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
    finally:
        LinkState._counts = real  # type: ignore[method-assign]
    return 1000 * float(np.median(cpu)), max(peak) / 2**20


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--adds", type=int, default=4000)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--probe", type=int, default=20)
    ap.add_argument("--dense", action="store_true")
    a = ap.parse_args(argv)
    print(f"start: load {os.getloadavg()}", flush=True)
    persons = er.load_dataset(a.data, errors="quarantine").persons.reset_index(drop=True)
    n = len(persons)
    step = n // (a.adds + a.probe)
    held = np.arange(0, n, step)[:a.adds + a.probe]
    rest = persons.drop(index=held).reset_index(drop=True)
    t = time.process_time()
    res = _link(rest, None, DEFAULT_MODEL)
    state = LinkState.build(rest, res.key, Frozen.of(res, len(rest)))
    print(f"{n:,} persons; link + build of {len(rest):,}: {time.process_time() - t:.1f} s CPU", flush=True)
    probes = [persons.iloc[[i]] for i in held[a.adds:]]
    print("| adds since build | delta: CPU ms/add, peak MB | merged: CPU ms/add, peak MB | merge CPU s |"
          + (" dense (main): CPU ms/add, peak MB |" if a.dense else "") + " load |")
    for k, i in enumerate(held[:a.adds], 1):
        linked = link_new(state, persons.iloc[[i]])
        state = linked.state if linked.state is not None else state  # a change of known keys: skipped here
        if k % a.every == 0:
            d_ms, d_mb = probe(state, probes)
            t = time.process_time()
            merged = state.merged()
            m_s = time.process_time() - t
            m_ms, m_mb = probe(merged, probes)
            dense = ""
            if a.dense:
                x_ms, x_mb = probe(state, probes, dense_counts)
                dense = f" {x_ms:.1f}, {x_mb:.1f} |"
            print(f"| {state.delta.n:,} | {d_ms:.1f}, {d_mb:.1f} | {m_ms:.1f}, {m_mb:.1f} | {m_s:.2f} |{dense} "
                  f"{os.getloadavg()[0]:.2f} |", flush=True)
    print(f"end: load {os.getloadavg()}; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
