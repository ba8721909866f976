#!/usr/bin/env python
"""CPU time of each of ``normalize``'s rules on a district's persons, and on one row.

    python benchmarks/normalize_rules.py --data /tmp/er-1m [--rows N] [--repeat 3]

Reads ``persons.parquet`` of ``--data`` (read only), then times, with ``time.process_time``
(CPU, so the shared machine's load matters less than for wall time), each rule on the
whole column (the vectorised path: a district's load) and the whole ``linkage_keys`` and
``pseudonymise``; then ``linkage_keys`` and each ``pseudonymise`` of one row (the few-values
path: a service's added person), the median of many calls. Prints the figures, the load
average and the peak RSS. Not part of the test suite; figures go into BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from escalation_risk import normalize as nz  # noqa: E402
from escalation_risk.dataset.pseudonyms import pseudonymise  # noqa: E402


def cpu(fn, repeat: int) -> float:
    """The smallest CPU seconds of ``repeat`` calls of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True)
    ap.add_argument("--rows", type=int, default=0, help="the first N persons only (0: all)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--one", type=int, default=2000, help="calls of the one-row benchmarks")
    a = ap.parse_args()
    key = (HERE.parent / "data" / "sample" / "SAMPLE_KEY").read_text().strip().encode()
    p = pd.read_parquet(Path(a.data) / "persons.parquet", columns=["person_id", "name", "id_number", "phone"])
    if a.rows:
        p = p.iloc[:a.rows]
    print(f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; {len(p):,} persons")
    name = nz.normalise_name(p["name"])
    idn = nz.normalise_id(p["id_number"])
    parts = nz._id_parts(idn)
    steps = {
        "normalise_id": lambda: nz.normalise_id(p["id_number"]),
        "normalise_phone": lambda: nz.normalise_phone(p["phone"]),
        "normalise_name": lambda: nz.normalise_name(p["name"]),
        "_id_parts": lambda: nz._id_parts(idn),
        "name_pinyin": lambda: nz.name_pinyin(name),
        "name_shape": lambda: nz.name_shape(name),
        "hash64 (ids)": lambda: nz.hash64(idn, key, "id_number"),
        "hash64 (int parts)": lambda: nz.hash64(parts["swap_even"], key, "s"),
        "linkage_keys": lambda: nz.linkage_keys(p, key, names=name),
        "pseudonymise (names)": lambda: pseudonymise(p["name"], key, "name", normalised=name),
        "pseudonymise (ids)": lambda: pseudonymise(p["id_number"], key, "id_number"),
    }
    total = 0.0
    for label, fn in steps.items():
        s = cpu(fn, a.repeat)
        total += s
        print(f"  {label:24s} {s:7.3f} s CPU")
    print(f"  {'sum':24s} {total:7.3f} s CPU")
    # One added person: a row of the table, varied (names with traditional characters too).
    rows = [p.iloc[[i]] for i in range(0, len(p), max(1, len(p) // 50))][:50]
    for label, fn in {
        "linkage_keys, one row": lambda r: nz.linkage_keys(r, key),
        "pseudonymise one name": lambda r: pseudonymise(r["name"], key, "name"),
        "pseudonymise one id": lambda r: pseudonymise(r["id_number"], key, "id_number"),
    }.items():
        times = []
        for i in range(a.one):
            r = rows[i % len(rows)]
            t = time.process_time()
            fn(r)
            times.append(time.process_time() - t)
        print(f"  {label:24s} {statistics.median(times) * 1e3:7.3f} ms CPU (median of {a.one}), "
              f"mean {statistics.fmean(times) * 1e3:.3f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
