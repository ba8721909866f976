"""What the privacy and formula-cell rules cost: the safe-id check of the loader and the
allow-list CSV writer, on the committed sample district.

    .venv/bin/python benchmarks/privacy.py [--repeat 3]

Prints the best of ``--repeat`` runs of each, against the same work without the rule.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from escalation_risk import outputs
from escalation_risk.contract import TABLES
from escalation_risk.dataset.parsing import _parse_column

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cols = [(name, c, pd.read_parquet(SAMPLE / f"{name}.parquet", columns=[c.name])[c.name])
            for name, t in TABLES.items() for c in t.columns if c.kind == "id"]
    n = sum(len(s) for _, _, s in cols)

    def parse(kind: str) -> None:
        for name, c, s in cols:
            _parse_column(name, dataclasses.replace(c, kind=kind), s)

    plain, checked = _best(lambda: parse("str"), args.repeat), _best(lambda: parse("id"), args.repeat)
    print(f"ids: {n:,} cells of {len(cols)} id columns: parsed {plain:.2f} s without the safe-id check, "
          f"{checked:.2f} s with it (+{checked - plain:.2f} s)")

    rng = np.random.default_rng(0)
    k = 100_000
    scores = pd.DataFrame({"dispute_id": [f"I{i:07d}" for i in range(k)], "as_of": pd.Timestamp("2025-06-30"),
                           "probability": rng.random(k), "level": "blue", "trend": "new", "delta": np.nan,
                           "reasons": [["a reason", "another"]] * k, "reasons_zh": [["原因"]] * k,
                           "reason_features": [["f1", "f2"]] * k, "plan": "joint_visit"})
    def before(path: Path) -> None:  # what the nightly job wrote before: lists as JSON, then to_csv
        out = scores.copy()
        for c in ("reasons", "reasons_zh", "reason_features"):
            out[c] = out[c].map(lambda v: json.dumps(list(v), ensure_ascii=False))
        out.to_csv(path, index=False)

    with tempfile.TemporaryDirectory() as tmp:
        raw = _best(lambda: before(Path(tmp) / "raw.csv"), args.repeat)
        safe = _best(lambda: outputs.to_csv(scores, "scores", Path(tmp) / "safe.csv"), args.repeat)
    print(f"scores CSV: {k:,} rows: JSON lists + pandas to_csv {raw:.2f} s, outputs.to_csv (allow-list, JSON "
          f"lists, neutralised and quoted cells) {safe:.2f} s")


if __name__ == "__main__":
    main()
