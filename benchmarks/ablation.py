"""Does each feature family earn its place? An ablation on fresh districts, and fairness as a setting.

For each seed (never the sample's 7): generate a district, train the full model
(every family, re-scored monthly while open, as ``make model`` trains) at the cutoff,
then the same model without one family at a time (``exclude=[family]``), without all
four (the default model: the four stay off until they earn their place) and, with
``--fairness``, the default model without the personal attributes
(``exclude=["gender", "hukou", "age"]`` and the four families). The models share the examples,
features and text-model scores (``train_variants``); with ``--share-search`` the
variants use the parameter set the full model chose (they differ only in features;
each still picks its number of trees). Every model scores the disputes first reported
in the year after the cutoff, at report time and on monthly nights while open (the
nightly job's view). Prints, per seed, family and view, the paired bootstrap 95%
interval of the change in ROC AUC and in precision in the top 5% (full model minus the
model without the family; resampled by dispute), and whether the family earns its place
(an interval above zero). Without the text model the lexicon is left alone: that row is
the comparison with the lexicon alone. The targets (lead over the logistic regression
on the same features, P@5% against it, ECE) for every variant, at report time and on
nights. With ``--fairness``, per group (gender, hukou, age band) AUC, precision and the
false-positive rate at the alert budget (the top 5%) of the default model with and without
the attributes, and (``--equalise hukou``) the same model with thresholds equalising the
false-positive rate across that attribute's groups, with the cost in precision.
``--linear`` sets the linear part (``auto``, the default; ``none``: the trees alone, the
model before the blend) for a before-and-after comparison.
CPU time, peak RSS and the load average are printed per seed.

    python benchmarks/ablation.py --persons 40000 --seeds 11 13 17 --n-boot 400 --share-search --out /tmp/a.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

import escalation_risk as er
from escalation_risk.features import build_features
from escalation_risk.labels import make_labels
from escalation_risk.model import night_points, report_points
from escalation_risk.model.calibration import apply_calibrator, fit_calibrator
from escalation_risk.model.fairness import equalised_comparison
from escalation_risk.model.metrics import (
    baseline_scores,
    bootstrap_intervals,
    expected_calibration_error,
    group_attributes,
)
from escalation_risk.model.training import train_variants
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


def _fmt(v) -> str:
    return f"{v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]"


def _earns(rows: list[dict]) -> pd.DataFrame:
    """Per family: an interval above zero on some seed and view (AUC or P@5%), and one
    wholly below zero (clearly negative). A family earns its place with the first and
    without the second."""
    tab = pd.DataFrame(rows)
    tab = tab[tab["without"].isin(FAMILIES)]
    tab = tab.assign(above=tab["roc_auc"].map(lambda v: v[1] > 0) | tab["precision@5%"].map(lambda v: v[1] > 0),
                     below=tab["roc_auc"].map(lambda v: v[2] < 0) | tab["precision@5%"].map(lambda v: v[2] < 0))
    out = tab.groupby("without")[["above", "below"]].any()
    return out.assign(earns=out["above"] & ~out["below"])


def _measured(runs: list[dict], seeds, flag: str = "") -> str:
    persons = sorted({run["persons"] for run in runs})
    return (f"Measured by benchmarks/ablation.py{flag} on {time.strftime('%Y-%m-%d')} (2 shared cores): synthetic "
            f"districts of {', '.join(f'{n:,}' for n in persons)} people, seeds {', '.join(map(str, sorted(seeds)))} "
            f"(never the sample's 7), trained at 2024-07-01")


def merge(files: list[str], write: str | None, write_fairness: str | None = None) -> None:
    """Per-seed runs (``--out``) into the markdown tables of BENCHMARKS.md and, with
    ``write``, the ablation file every model card shows (``model/ablation.json``)."""
    runs = [json.loads(Path(f).read_text()) for f in files]
    rows = [r for run in runs for r in run["ablation"]]
    targets = [t for run in runs for t in run["targets"]]
    print("| without | seed | view | disputes | escalated | Δ AUC | Δ P@5% | interval above zero |")
    print("|---|---:|---|---:|---:|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["without"] not in FAMILIES, r["without"], r["seed"], r["view"] != "report")):
        above = r["roc_auc"][1] > 0 or r["precision@5%"][1] > 0
        below = r["roc_auc"][2] < 0 or r["precision@5%"][2] < 0
        print(f"| {r['without']} | {r['seed']} | {r['view']} | {r['n']:,} | {r['positives']:,} | {_fmt(r['roc_auc'])} "
              f"| {_fmt(r['precision@5%'])} | {'yes' if above else ('below zero' if below else 'no')} |")
    earns = _earns(rows) if rows else pd.DataFrame(columns=["above", "below", "earns"])
    print("\n" + earns.to_string())
    print("\n| seed | view | variant | lead over LR (AUC) | P@5% model vs LR | ECE (bootstrap) | Platt | isotonic "
          "| chosen | mean p / rate |")
    print("|---:|---|---|---|---|---|---|---|---|---|")
    for t in targets:
        print(f"| {t['seed']} | {t['view']} | {t['variant']} | {_fmt(t['model - logistic_regression roc_auc'])} "
              f"| {t['model precision@5%'][0]:.3f} vs {t['logistic_regression precision@5%'][0]:.3f} "
              f"| {_fmt(t['model ece'])} | {t.get('ece platt', float('nan')):.3f} "
              f"| {t.get('ece isotonic', float('nan')):.3f} | {t['calibration']} ({t['calibration_n']:,}) "
              f"| {t.get('mean p', float('nan')):.3f} / {t.get('rate', float('nan')):.3f} |")
    for run in runs:
        for c in run.get("costs", []):
            print(f"seed {c['seed']}: {run['persons']:,} people, wall {c['wall_s']:.0f} s, CPU {c['cpu_s']:.0f} s, "
                  f"peak RSS {c['peak_rss_mb']:.0f} MB, load {c['load_avg'][0]:.1f}")
    fair = [dict(r) for run in runs for r in run.get("fairness", [])]
    equal = [dict(r) for run in runs for r in run.get("equalised", [])]
    if write_fairness and fair:
        Path(write_fairness).write_text(json.dumps({
            "what": _measured(runs, {r["seed"] for r in fair}, " --fairness") + ", the default model with every "
                    "attribute and without gender, hukou and age, scored on the disputes first reported in the "
                    "following year at report time.",
            "fairness": fair, "equalised": equal}, default=float, indent=1) + "\n")
        print(f"wrote {write_fairness}: {len(fair)} fairness rows, {len(equal)} equalised rows")
    if write:
        kept = sorted(f for f in FAMILIES if f in earns.index and earns.loc[f, "earns"])
        off = [f for f in FAMILIES if f not in kept]
        Path(write).write_text(json.dumps({
            "what": _measured(runs, {r["seed"] for r in rows}) + " with monthly "
                    "re-scoring (the variants with the full model's parameter set), scored on the disputes first "
                    "reported in the following year at report time (report) and on monthly nights while open "
                    "(nights).",
            "verdict": f"Kept (an interval above zero on some seed and view, none below zero): "
                       f"{', '.join(kept) or 'none'}. Behind the setting config={{\"families_off\": []}}: "
                       f"{', '.join(off) or 'none'}. The row 'none of the four' removes all four at once.",
            "families_off": off, "rows": rows, "targets": targets}, default=float, indent=1) + "\n")
        print(f"wrote {write}: kept {kept or 'none'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--persons", type=int, default=12000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[11, 13, 17])
    ap.add_argument("--cutoff", default="2024-07-01")
    ap.add_argument("--horizon", type=int, default=90)
    ap.add_argument("--n-boot", type=int, default=500)
    ap.add_argument("--share-search", action="store_true",
                    help="variants use the full model's parameter set (a third of the boosters)")
    ap.add_argument("--fairness", action="store_true", help="also the model without gender, hukou, age")
    ap.add_argument("--linear", default="auto", choices=["auto", "blend", "none"],
                    help="the linear part beside the trees (none: the trees alone)")
    ap.add_argument("--equalise", default=None, choices=["gender", "hukou", "age_band"],
                    help="with --fairness: also equalised false-positive-rate thresholds across this attribute")
    ap.add_argument("--calibration", default="auto", help="the calibrator: auto, platt or isotonic")
    ap.add_argument("--validation-months", type=int, default=6, help="the calibration set: months of windows")
    ap.add_argument("--only", nargs="+", default=None,
                    help="train only these variants (e.g. 'none of the four' for the targets and calibrators)")
    ap.add_argument("--out", default=None, help="Write every figure as JSON here.")
    ap.add_argument("--merge", nargs="+", default=None, help="print the tables of these per-seed --out files")
    ap.add_argument("--write-ablation", default=None, help="with --merge: write the model cards' ablation file here")
    ap.add_argument("--write-fairness", default=None,
                    help="with --merge: write the model cards' fairness file here (model/fairness.json)")
    args = ap.parse_args()
    if args.merge:
        merge(args.merge, args.write_ablation, args.write_fairness)
        return
    key = Path(__file__).resolve().parents[1] / "data" / "sample" / "SAMPLE_KEY"  # public on purpose
    cutoff = pd.Timestamp(args.cutoff)
    end = cutoff + pd.DateOffset(years=1)
    config = {**CONFIG, "calibration": args.calibration, "validation_months": args.validation_months,
              "linear": args.linear, "equalise_fpr": args.equalise if args.fairness else None}
    variants: dict[str, list[str]] = {"full": [], **{f: [f] for f in FAMILIES}, "none of the four": list(FAMILIES)}
    if args.fairness:
        variants["gender,hukou,age"] = list(ATTRIBUTES) + list(FAMILIES)
    if args.only:
        variants = {k: v for k, v in variants.items() if k in args.only}
    rows, targets, fair, costs, equal = [], [], [], [], []  # type: ignore[var-annotated]

    def dump() -> None:  # after every seed: a long run stopped early keeps what it measured
        if args.out:
            Path(args.out).write_text(json.dumps(
                {"ablation": rows, "targets": targets, "costs": costs,
                 "fairness": pd.concat(fair).to_dict(orient="records") if fair else [],
                 "equalised": pd.concat(equal).to_dict(orient="records") if equal else [], "linear": args.linear,
                 "persons": args.persons, "seeds": args.seeds, "share_search": args.share_search,
                 "calibration": args.calibration, "n_boot": args.n_boot}, default=float, indent=1))

    for seed in args.seeds:
        t0, c0 = time.perf_counter(), time.process_time()
        ds = generate_district(args.persons, seed=seed, pseudonym_key=key)
        models = train_variants(ds, variants, cutoff=cutoff, horizon_days=args.horizon, seed=0, config=config,
                                share_search=args.share_search)
        full = next(iter(models.values()))  # the text model is shared: any variant's serves
        t_train = time.process_time() - c0
        for view, pts in _views(ds, cutoff, end, args.horizon).items():
            y = make_labels(ds, pts, horizon_days=args.horizon).to_numpy()
            ok = ~np.isnan(y)
            pts, y = pts[ok].reset_index(drop=True), y[ok]
            groups = pts["dispute_id"].to_numpy(dtype=object)
            X = build_features(ds, pts, text=full.text_model)
            scorers = {("model" if name == "full" else name): (m.predict_proba(X),) * 2 for name, m in models.items()}
            iv = pd.DataFrame() if "model" not in scorers else bootstrap_intervals(
                y, scorers, groups=groups, metrics=("roc_auc", "precision@5%"), n_boot=args.n_boot,
                seed=seed).set_index(["scorer", "metric"])
            for name in models:
                if name == "full" or "model" not in scorers:
                    continue
                r = {"seed": seed, "view": view, "without": name, "n": int(len(y)), "positives": int(y.sum())}
                for m in ("roc_auc", "precision@5%"):
                    e, lo, hi = iv.loc[(f"model - {name}", m), ["estimate", "lo", "hi"]]
                    r[m] = [float(e), float(lo), float(hi)]
                rows.append(r)
            # The targets of every variant against the logistic regression on its own features.
            for name, m in models.items():
                p = m.predict_proba(X)
                lr = baseline_scores(X, m.baselines)["logistic_regression"]
                tv = bootstrap_intervals(y, {"model": (p, p), "logistic_regression": lr}, groups=groups,
                                         metrics=("roc_auc", "precision@5%", "ece"), n_boot=args.n_boot,
                                         seed=seed).set_index(["scorer", "metric"])
                # The calibrators on the same out-of-time scores: which would have been better here.
                raw, val = m.raw_score(X), m.validation or {}
                alt = {f"ece {c}": expected_calibration_error(
                    y, apply_calibrator(raw, fit_calibrator(val["raw"], val["y"], method=c, seed=0)))
                    for c in ("platt", "isotonic")} if val else {}
                targets.append({"seed": seed, "view": view, "variant": name, "n": int(len(y)),
                                "linear": m.manifest.get("linear_choice"),
                                "trees": m.manifest["training"]["best_iteration"],
                                "params": m.manifest["training"]["search"][m.manifest["training"]["chosen"]]["params"],
                                "positives": int(y.sum()), "calibration": m.calibrator["method"],
                                "calibration_n": int(m.calibrator.get("n", 0)),
                                "calibration_cv": m.calibrator.get("cv", {}),
                                "mean p": float(p.mean()), "rate": float(y.mean()), **alt,
                                **{f"{s} {k}": [float(v) for v in tv.loc[(s, k), ["estimate", "lo", "hi"]]]
                                   for s in ("model", "logistic_regression", "model - logistic_regression")
                                   for k in ("roc_auc", "precision@5%", "ece")}})
            if view == "report" and args.fairness:
                groups_x = group_attributes(X)
                f = fairness_comparison({"every attribute": scorers["none of the four"][0],
                                         "without gender, hukou, age": scorers["gender,hukou,age"][0]},
                                        y, groups_x[["gender", "hukou", "age_band"]], seed=seed,
                                        n_boot=min(args.n_boot, 300))
                fair.append(f.assign(seed=seed))
                if args.equalise:
                    for name in ("none of the four", "gender,hukou,age"):
                        spec = models[name].manifest["equalised_fpr"]
                        e = equalised_comparison(scorers[name][0], y, groups_x[args.equalise].to_numpy(), spec,
                                                 n_boot=min(args.n_boot, 300), seed=seed)
                        equal.append(e.assign(seed=seed, model=name, fpr_fitted=spec["fpr"]))
        costs.append({"seed": seed, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                      "train_cpu_s": t_train,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "load_avg": os.getloadavg()})
        print(f"seed {seed}: {costs[-1]}", flush=True)
        dump()
    tt = pd.DataFrame(targets)
    cols = ["model - logistic_regression roc_auc", "model - logistic_regression precision@5%", "model ece"]
    print("\ntargets (lead over the logistic regression, P@5% lead, ECE; the ECE each calibrator gives):")
    print(tt.assign(**{c: tt[c].map(_fmt) for c in cols})[
        ["seed", "view", "variant", "calibration", "calibration_n", *cols, "ece platt", "ece isotonic", "mean p",
         "rate"]].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if not rows:
        dump()
        return
    tab = pd.DataFrame(rows)
    show = tab.assign(**{m: tab[m].map(_fmt) for m in ("roc_auc", "precision@5%")})
    print("\nchange when the family is removed (full minus without; paired 95% bootstrap):")
    print(show.to_string(index=False))
    print("\nfamily earns its place (an interval above zero on some seed and view, none below zero):")
    print(_earns(rows).to_string())
    if fair:
        fr = pd.concat(fair, ignore_index=True)
        print("\nAUC, precision and false-positive rate at the 5% budget per group, with and without the attributes:")
        print(fr.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if equal:
        print("\none threshold against equalised false-positive rates (" + str(args.equalise) + "), held out:")
        print(pd.concat(equal, ignore_index=True).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    dump()


if __name__ == "__main__":
    main()
