"""The quality bar on fresh districts: model against both baselines, out of time.

For each seed, generate a district that is not the committed sample, train on what was
known at the cutoff, and score every dispute reported in the following year at its
report time (labels observed). Prints ROC AUC, average precision, precision at the 5%
budget and calibration error for the model, the logistic regression and the checklist,
and whether the model beats both baselines on AUC and P@5% with ECE under 0.02.

    python benchmarks/quality.py --persons 40000 --seeds 11 13 17
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

import escalation_risk as er
from escalation_risk.synth import generate_district

COLUMNS = ["roc_auc", "average_precision", "precision@5%", "ece"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=40000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[11, 13, 17])
    ap.add_argument("--cutoff", default="2024-07-01")
    args = ap.parse_args()
    # Synthetic districts: the committed sample key, public on purpose.
    key = Path(__file__).resolve().parents[1] / "data" / "sample" / "SAMPLE_KEY"
    rows = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        ds = generate_district(args.persons, seed=seed, pseudonym_key=key)
        model = er.train(ds, cutoff=args.cutoff)
        ev = model.evaluate(ds, start=args.cutoff, end=pd.Timestamp(args.cutoff) + pd.DateOffset(years=1))
        m = ev.metrics
        passed = (all(m.loc["model", c] > m.loc[b, c] for b in ("logistic_regression", "checklist")
                      for c in ("roc_auc", "precision@5%")) and m.loc["model", "ece"] < 0.02)
        print(f"\nseed {seed}: {ev.period.get('n')} disputes, {ev.period.get('positives')} escalated, "
              f"{time.perf_counter() - t0:.0f} s — bar {'met' if passed else 'MISSED'}")
        print(m[COLUMNS].to_string(float_format=lambda v: f"{v:.3f}"))
        rows.append({"seed": seed, "passed": passed, **{f"model {c}": m.loc["model", c] for c in COLUMNS},
                     **{f"best baseline {c}": m.loc[["logistic_regression", "checklist"], c].max()
                        for c in ("roc_auc", "precision@5%")}})
    print("\n" + pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
