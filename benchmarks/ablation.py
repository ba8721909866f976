"""Does each feature family earn its place? An ablation on fresh districts, and fairness as a setting.

For each seed (never the sample's 7): generate a district, train the full model
(every family, re-scored monthly while open, as ``make model`` trains) at the cutoff,
then the same training without one family at a time (``train(..., exclude=[family])``)
and without the personal attributes (``exclude=["gender", "hukou", "age"]``). Every
model scores the disputes first reported in the year after the cutoff, at report time
and on monthly nights while open (the nightly job's view). Prints, per seed, family
and view, the paired bootstrap 95% interval of the change in ROC AUC and in precision
in the top 5% (full model minus the model without the family; resampled by dispute),
and whether the family earns its place (an interval above zero). Without the text
model the lexicon is left alone: that row is the comparison with the lexicon alone.
For the attributes: per group (gender, hukou, age band) AUC, precision and the false-positive rate at
the alert budget (the top 5%) with and without them, with intervals.

    python benchmarks/ablation.py --persons 10000 --seeds 11 13 17 --n-boot 400 --out /tmp/ablation.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

import escalation_risk as er
from escalation_risk.features import build_features
from escalation_risk.labels import make_labels
from escalation_risk.model import night_points, report_points
from escalation_risk.model.metrics import bootstrap_intervals, group_attributes
from escalation_risk.model_card import fairness_comparison
from escalation_risk.synth import generate_district

FAMILIES = ("velocity", "after_mediation", "circle", "text_model")
ATTRIBUTES = ("gender", "hukou", "age")
CONFIG = {"rescore_every_days": 30, "max_rescores": 6, "families_off": []}


def _views(ds: er.Dataset, cutoff: pd.Timestamp, end: pd.Timestamp, horizon: int) -> dict[str, pd.DataFrame]:
    rep = report_points(ds, cutoff, end)
    nights = night_points(ds, start=cutoff, end=end, horizon_days=horizon)
    first = ds.incidents.set_index("incident_id").loc[nights["dispute_id"], "reported_at"].to_numpy()
    # Disputes open at the cutoff were training examples: only those first reported after it.
    return {"report": rep, "nights": nights[first >= cutoff.to_datetime64()].reset_index(drop=True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--persons", type=int, default=12000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[11, 13, 17])
    ap.add_argument("--cutoff", default="2024-07-01")
    ap.add_argument("--horizon", type=int, default=90)
    ap.add_argument("--n-boot", type=int, default=500)
    ap.add_argument("--out", default=None, help="Write every figure as JSON here.")
    args = ap.parse_args()
    key = Path(__file__).resolve().parents[1] / "data" / "sample" / "SAMPLE_KEY"  # public on purpose
    cutoff = pd.Timestamp(args.cutoff)
    end = cutoff + pd.DateOffset(years=1)
    rows, targets, fair = [], [], []
    for seed in args.seeds:
        t0 = time.perf_counter()
        ds = generate_district(args.persons, seed=seed, pseudonym_key=key)
        full = er.train(ds, cutoff=cutoff, horizon_days=args.horizon, seed=0, config=CONFIG,
                        holdout=(cutoff, end))
        models = {"full": full}
        for fam in FAMILIES:
            models[fam] = er.train(ds, cutoff=cutoff, horizon_days=args.horizon, seed=0, config=CONFIG, exclude=[fam])
        models["gender,hukou,age"] = er.train(ds, cutoff=cutoff, horizon_days=args.horizon, seed=0, config=CONFIG,
                                              exclude=list(ATTRIBUTES))
        hv = full.holdout.intervals.set_index(["scorer", "metric"])
        targets.append({"seed": seed, **{f"{s} {m}": [hv.loc[(s, m), c] for c in ("estimate", "lo", "hi")]
                                         for s in ("model", "logistic_regression", "model - logistic_regression")
                                         for m in ("roc_auc", "precision@5%", "ece")}})
        for view, pts in _views(ds, cutoff, end, args.horizon).items():
            y = make_labels(ds, pts, horizon_days=args.horizon).to_numpy()
            ok = ~np.isnan(y)
            pts, y = pts[ok].reset_index(drop=True), y[ok]
            X = build_features(ds, pts, text=full.text_model)
            scorers = {("model" if name == "full" else name): (m.predict_proba(X),) * 2 for name, m in models.items()}
            iv = bootstrap_intervals(y, scorers, groups=pts["dispute_id"].to_numpy(dtype=object),
                                     metrics=("roc_auc", "precision@5%"), n_boot=args.n_boot, seed=seed)
            iv = iv.set_index(["scorer", "metric"])
            for name in models:
                if name == "full":
                    continue
                r = {"seed": seed, "view": view, "without": name, "n": int(len(y)), "positives": int(y.sum())}
                for m in ("roc_auc", "precision@5%"):
                    e, lo, hi = iv.loc[(f"model - {name}", m), ["estimate", "lo", "hi"]]
                    r[m] = [float(e), float(lo), float(hi)]
                rows.append(r)
            if view == "report":
                f = fairness_comparison({"all features": scorers["model"][0],
                                         "without gender, hukou, age": scorers["gender,hukou,age"][0]},
                                        y, group_attributes(X)[["gender", "hukou", "age_band"]], seed=seed,
                                        n_boot=min(args.n_boot, 300))
                fair.append(f.assign(seed=seed))
        print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
        if args.out:  # after every seed: a long run stopped early keeps what it measured
            Path(args.out).write_text(json.dumps({"ablation": rows, "targets": targets,
                                                  "fairness": pd.concat(fair).to_dict(orient="records"),
                                                  "persons": args.persons, "seeds": args.seeds}, default=float,
                                                 indent=1))
    tab = pd.DataFrame(rows)

    def fmt(v):
        return f"{v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]"

    show = tab.assign(**{m: tab[m].map(fmt) for m in ("roc_auc", "precision@5%")})
    print("\nchange when the family is removed (full minus without; paired 95% bootstrap):")
    print(show.to_string(index=False))
    earns = tab.assign(above=tab["roc_auc"].map(lambda v: v[1] > 0) | tab["precision@5%"].map(lambda v: v[1] > 0))
    print("\nfamily earns its place (an interval above zero on some seed and view):")
    print(earns.groupby("without")["above"].any().to_string())
    print("\ntargets (report time, the full model):")
    print(pd.DataFrame(targets).to_string(index=False))
    fr = pd.concat(fair, ignore_index=True)
    print("\nAUC, precision and false-positive rate at the 5% budget per group, with and without the attributes:")
    print(fr.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.out:
        Path(args.out).write_text(json.dumps({"ablation": rows, "targets": targets,
                                              "fairness": fr.to_dict(orient="records"),
                                              "persons": args.persons, "seeds": args.seeds}, default=float,
                                             indent=1))


if __name__ == "__main__":
    main()
