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
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import escalation_risk as er
from escalation_risk.features import REGISTRY, build_features
from escalation_risk.labels import make_labels
from escalation_risk.model import night_points, report_points
from escalation_risk.model.baselines import logistic_terms
from escalation_risk.model.calibration import apply_calibrator, fit_calibrator
from escalation_risk.model.fairness import equalised_comparison, fairness_comparison
from escalation_risk.model.metrics import (
    baseline_scores,
    bootstrap_intervals,
    expected_calibration_error,
    group_attributes,
)
from escalation_risk.model.points import open_points
from escalation_risk.model.training import FAMILIES_OFF, PARAM_GRID, train_variants
from escalation_risk.synth import generate_district

FAMILIES = ("velocity", "after_mediation", "circle", "text_model")
ATTRIBUTES = ("gender", "hukou", "age")
# The families measured by later passes (activity, separation) stay off in every variant, so
# "none of the four" is the default model and each row measures one of the four alone.
CONFIG = {"rescore_every_days": 30, "max_rescores": 6,
          "families_off": [f for f in FAMILIES_OFF if f not in FAMILIES]}
# --diagnose: parameter sets offered to the default model's search beside PARAM_GRID (the
# windows choose, as always): the regularised set with the literature's monotone direction
# on prior harm, and a set sampling a third of the features at every split, so the sparse
# history counts the trees never reached get their turn.
CANDIDATE_SETS = [
    {"num_leaves": 7, "min_data_in_leaf": 300, "lambda_l2": 30.0, "feature_fraction": 0.5, "monotone_history": True},
    {"num_leaves": 15, "min_data_in_leaf": 100, "lambda_l2": 10.0, "feature_fraction": 1.0,
     "feature_fraction_bynode": 0.3, "monotone_history": True},
]


def _iv(x: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Information value of ``x`` for ``y``: quantile bins, missing values their own bin,
    each bin's rates shrunk by half an observation."""
    code = np.full(len(x), -1)
    ok = ~np.isnan(x)
    if ok.any():
        edges = np.unique(np.quantile(x[ok], np.linspace(0, 1, bins + 1)[1:-1]))
        code[ok] = np.searchsorted(edges, x[ok], side="left")
    iv = 0.0
    pos, neg = max(y.sum(), 1), max((1 - y).sum(), 1)
    for c in np.unique(code):
        m = code == c
        g, b = (y[m].sum() + 0.5) / pos, ((1 - y[m]).sum() + 0.5) / neg
        iv += (g - b) * np.log(g / b)
    return float(iv)


def _auc(y: np.ndarray, x: np.ndarray) -> float:
    """Univariate AUC, missing as the lowest value, oriented (0.5 = no signal)."""
    from sklearn.metrics import roc_auc_score
    v = np.where(np.isnan(x), np.nanmin(x) - 1 if (~np.isnan(x)).any() else 0.0, x)
    a = roc_auc_score(y, v) if 0 < y.sum() < len(y) and np.ptp(v) > 0 else 0.5
    return float(max(a, 1 - a))


def _unused_share(m, X: pd.DataFrame) -> dict:
    """How much the trees leave unused: features with no split, and the share of the
    logistic regression's mean absolute log-odds terms on them."""
    names = m.feature_names
    splits = np.asarray(m.booster.feature_importance("split"))
    lin = m.baselines["logistic_regression"]
    terms = np.abs(logistic_terms(m._matrix(X), names, lin)).mean(axis=0)
    unused = splits == 0
    return {"features": len(names), "split_on": int((~unused).sum()),
            "lr_share_on_unused": float(terms[unused].sum() / max(terms.sum(), 1e-12))}


def diagnose(ds: er.Dataset, models: dict, X: pd.DataFrame, y: np.ndarray, cutoff: pd.Timestamp, seed: int,
             view: str) -> dict:
    """Why the four families add nothing: per family feature, its held-out univariate AUC
    and IV, how often it is set, its strongest rank correlation with a feature outside
    the four, and the full model's splits and gain on it; the point-in-time check (the
    family columns at a moment computed on all the data and on the data cut there
    agree); the linear model's gain from the four; and what the trees leave unused."""
    full, default = models["full"], models["none of the four"]
    fam_of = {n: REGISTRY[n].family for n in full.feature_names}
    fam_cols = [n for n in full.feature_names if fam_of[n] in FAMILIES]
    others = [n for n in full.feature_names if fam_of[n] not in FAMILIES and str(X[n].dtype) != "category"]
    rank = X[others].rank().to_numpy(dtype=float)
    with warnings.catch_warnings():  # a column missing everywhere has no mean: 0
        warnings.simplefilter("ignore", RuntimeWarning)
        rank = np.where(np.isnan(rank), np.nan_to_num(np.nanmean(rank, axis=0)), rank)
    rank = (rank - rank.mean(axis=0)) / np.where(rank.std(axis=0) > 0, rank.std(axis=0), 1)
    splits = dict(zip(full.feature_names, full.booster.feature_importance("split")))
    gain = dict(zip(full.feature_names, full.booster.feature_importance("gain")))
    total_gain = max(sum(gain.values()), 1e-12)
    feats = []
    for n in fam_cols:
        x = X[n].to_numpy(dtype=float)
        r = pd.Series(x).rank().to_numpy()
        r = np.where(np.isnan(r), np.nanmean(r) if (~np.isnan(r)).any() else 0.0, r)
        r = (r - r.mean()) / (r.std() or 1)
        corr = np.abs(rank.T @ r) / len(r)
        j = int(np.argmax(corr))
        feats.append({"family": fam_of[n], "feature": n, "auc": _auc(y, x), "iv": _iv(x, y),
                      "set_share": float(np.mean(~np.isnan(x) & (x != 0))),
                      "max_rank_corr": float(corr[j]), "closest": others[j],
                      "splits": int(splits[n]), "gain_share": float(gain[n] / total_gain)})
    # Point in time (once): the open disputes 60 days after the cutoff, on all the data and on the data cut there.
    when = cutoff + pd.Timedelta(days=60)
    pts = open_points(ds, when) if view == "report" else open_points(ds, when).iloc[:0]
    a = build_features(ds, pts, text=full.text_model)[fam_cols]
    b = build_features(ds.cut(when), pts, text=full.text_model)[fam_cols]
    same = np.isclose(a.to_numpy(dtype=float), b.to_numpy(dtype=float), equal_nan=True)
    lr_full = baseline_scores(X, full.baselines)["logistic_regression"][0]
    lr_default = baseline_scores(X, default.baselines)["logistic_regression"][0]
    lr_iv = bootstrap_intervals(y, {"model": (lr_full, lr_full), "lr": (lr_default, lr_default)},
                                metrics=("roc_auc",), n_boot=200, seed=seed).set_index(["scorer", "metric"])
    out = {"seed": seed, "view": view, "features": feats,
           "point_in_time": {"moment": str(when), "points": int(len(pts)), "cells": int(same.size),
                             "differing": int((~same).sum()),
                             "differing_columns": [c for c, ok in zip(fam_cols, same.all(axis=0)) if not ok]},
           "lr_gain_from_the_four_auc": [float(v) for v in lr_iv.loc[("model - lr", "roc_auc"),
                                                                      ["estimate", "lo", "hi"]]],
           "unused": {name: _unused_share(m, X) for name, m in models.items()
                      if name in ("none of the four", "full", "candidate")}}
    fam = pd.DataFrame(feats)
    print(f"\nfamily features, held out ({view}; univariate AUC oriented; IV; the full model's splits):")
    print(fam.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"point in time at {when:%Y-%m-%d}: {out['point_in_time']['differing']} of {same.size} family cells "
          f"differ between all the data and the data cut there ({len(pts)} open disputes)")
    print(f"the logistic regression's AUC gain from the four families: {_fmt(out['lr_gain_from_the_four_auc'])}")
    print(f"unused by the trees: {out['unused']}")
    return out


def _views(ds: er.Dataset, cutoff: pd.Timestamp, end: pd.Timestamp, horizon: int) -> dict[str, pd.DataFrame]:
    rep = report_points(ds, cutoff, end)
    nights = night_points(ds, start=cutoff, end=end, horizon_days=horizon)
    first = ds.incidents.set_index("incident_id").loc[nights["dispute_id"], "reported_at"].to_numpy()
    # Disputes open at the cutoff were training examples: only those first reported after it.
    return {"report": rep, "nights": nights[first >= cutoff.to_datetime64()].reset_index(drop=True)}


def _fmt(v) -> str:
    return f"{v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]"


SEEDS_ABOVE = 2  # a family's gain must show on this many seeds


def _earns(rows: list[dict]) -> pd.DataFrame:
    """Per family: the seeds with an interval wholly above zero (AUC or P@5%, either view),
    and whether any interval lies wholly below zero. A family earns its place with gains on
    ``SEEDS_ABOVE`` seeds and no loss: with four intervals a seed, one above zero on one seed
    is what chance gives over a few seeds."""
    tab = pd.DataFrame(rows)
    tab = tab[tab["without"].isin(FAMILIES)]
    tab = tab.assign(above=tab["roc_auc"].map(lambda v: v[1] > 0) | tab["precision@5%"].map(lambda v: v[1] > 0),
                     below=tab["roc_auc"].map(lambda v: v[2] < 0) | tab["precision@5%"].map(lambda v: v[2] < 0))
    below = tab.groupby("without")["below"].any()
    seeds_above = tab[tab["above"]].groupby("without")["seed"].nunique().reindex(below.index, fill_value=0)
    out = pd.DataFrame({"seeds_above": seeds_above, "below": below})
    return out.assign(earns=(out["seeds_above"] >= SEEDS_ABOVE) & ~out["below"])


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
    earns = _earns(rows) if rows else pd.DataFrame(columns=["seeds_above", "below", "earns"])
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
        # Families measured apart (not by this script) keep their place and their notes:
        # rewriting the table must not switch them on by leaving them out of families_off.
        old = json.loads(Path(write).read_text()) if Path(write).is_file() else {}
        notes = {k: v for k, v in old.items() if k not in ("what", "verdict", "families_off", "rows", "targets")}
        later = [f for f in old.get("families_off", []) if f not in FAMILIES]
        Path(write).write_text(json.dumps({
            "what": _measured(runs, {r["seed"] for r in rows}) + " with monthly "
                    "re-scoring (the variants with the full model's parameter set), scored on the disputes first "
                    "reported in the following year at report time (report) and on monthly nights while open "
                    "(nights).",
            "verdict": f"Kept (an interval above zero on {SEEDS_ABOVE} seeds or more, none below zero): "
                       f"{', '.join(kept) or 'none'}. Behind the setting config={{\"families_off\": []}}: "
                       f"{', '.join(off + later) or 'none'}"
                       + (f" ({', '.join(later)}: measured apart, see below)" if later else "")
                       + ". The row 'none of the four' removes the four together: the default model.",
            "families_off": off + later, "rows": rows, "targets": targets, **notes}, default=float, indent=1) + "\n")
        print(f"wrote {write}: kept {kept or 'none'}; left as they were: {later or 'none'}")


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
    ap.add_argument("--diagnose", action="store_true",
                    help="why the families add nothing (per-feature AUC, IV, redundancy, splits, point in time), "
                    "and the default model with CANDIDATE_SETS offered to its search ('candidate')")
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
    if args.diagnose:  # the default model searches first; the family variants share its set
        variants = {"none of the four": list(FAMILIES), "full": [], **{f: [f] for f in FAMILIES},
                    "candidate": {"exclude": list(FAMILIES),
                                  "config": {"param_grid": [*PARAM_GRID, *CANDIDATE_SETS]}}}
    if args.only:
        variants = {k: v for k, v in variants.items() if k in args.only}
    rows, targets, fair, costs, equal, diag = [], [], [], [], [], []  # type: ignore[var-annotated]

    def dump() -> None:  # after every seed: a long run stopped early keeps what it measured
        if args.out:
            Path(args.out).write_text(json.dumps(
                {"ablation": rows, "targets": targets, "costs": costs, "diagnosis": diag,
                 "fairness": pd.concat(fair).to_dict(orient="records") if fair else [],
                 "equalised": pd.concat(equal).to_dict(orient="records") if equal else [], "linear": args.linear,
                 "persons": args.persons, "seeds": args.seeds, "share_search": args.share_search,
                 "calibration": args.calibration, "n_boot": args.n_boot}, default=float, indent=1))

    for seed in args.seeds:
        t0, c0 = time.perf_counter(), time.process_time()
        ds = generate_district(args.persons, seed=seed, pseudonym_key=key)
        models = train_variants(ds, variants, cutoff=cutoff, horizon_days=args.horizon, seed=0, config=config,
                                share_search=args.share_search)
        # The text model is shared: any variant that has one serves (not one trained without it).
        full = next((m for m in models.values() if m.text_model is not None), next(iter(models.values())))
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
                if name in ("full", "candidate") or "model" not in scorers:
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
                                "search": [{k: t[k] for k in ("params", "n_trees", "window_log_loss", "window_auc")}
                                           for t in m.manifest["training"]["search"]],
                                "positives": int(y.sum()), "calibration": m.calibrator["method"],
                                "calibration_n": int(m.calibrator.get("n", 0)),
                                "calibration_cv": m.calibrator.get("cv", {}),
                                "mean p": float(p.mean()), "rate": float(y.mean()), **alt,
                                **{f"{s} {k}": [float(v) for v in tv.loc[(s, k), ["estimate", "lo", "hi"]]]
                                   for s in ("model", "logistic_regression", "model - logistic_regression")
                                   for k in ("roc_auc", "precision@5%", "ece")}})
            if "candidate" in models and "none of the four" in models:
                c, d = scorers["candidate"][0], scorers["none of the four"][0]
                ci = bootstrap_intervals(y, {"model": (c, c), "default": (d, d)}, groups=groups,
                                         metrics=("roc_auc", "precision@5%"), n_boot=args.n_boot,
                                         seed=seed).set_index(["scorer", "metric"])
                targets[-1]["candidate - default"] = {
                    k: [float(v) for v in ci.loc[("model - default", k), ["estimate", "lo", "hi"]]]
                    for k in ("roc_auc", "precision@5%")}
                cd = targets[-1]["candidate - default"]
                print(f"seed {seed} {view}: candidate minus default AUC {_fmt(cd['roc_auc'])}, "
                      f"P@5% {_fmt(cd['precision@5%'])}", flush=True)
            if args.diagnose:
                diag.append(diagnose(ds, models, X, y, cutoff, seed, view))
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
