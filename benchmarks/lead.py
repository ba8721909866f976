"""The model's lead over the logistic regression, and why the regression wins the top 5% where it does.

Issue 29's targets on fresh districts (seeds other than the sample's 7): the default model's
lead over the logistic regression on the same features (paired bootstrap 95% interval by
dispute), precision in the top 5% against it, and ECE, on the disputes first reported in
the year after the cutoff, at report time. Then, per seed:

- **The top-5% disagreements:** the disputes only the regression puts in its top 5%, and
  those only the model does; how often each escalated, and the features whose regression
  terms and tree contributions (TreeSHAP) differ most between the two sets, with how often
  they exceed the training examples' 99th percentile (where trees saturate and a linear
  term extrapolates).
- **General remedies, chosen by the rolling-origin windows only** (the held-out year only
  reports): the trees alone (no linear part); the default's parameter set at a third of the
  learning rate with three times the trees; and trees boosted from the regression's
  log-odds (``init_score``): out of fold on every training row (5 folds by dispute, never
  on the rows it scores), Platt-shrunk on those rows, the fold regression's on each window.
  Each prints the windows' log-loss (the number the search compares) and the held-out
  figures it would give, with and without the blend the windows fit.

The features, labels and views of a district are built once and kept with ``--cache DIR``
(one pickle per size and seed), so a rerun of the analysis costs only the fits.

    python benchmarks/lead.py --persons 40000 --seeds 11 13 17 --cache /tmp/lead --out lead40.json
    /work/wt/big python benchmarks/lead.py --persons 100000 --seeds 11 --cache /tmp/lead --out lead100_11.json
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import time
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

from escalation_risk.features import CATEGORICAL, build_features
from escalation_risk.labels import data_end, make_labels
from escalation_risk.model.baselines import _fit_logistic, _logistic_proba, logistic_terms
from escalation_risk.model.blend import _logit, blend_raw, fit_blend
from escalation_risk.model.calibration import platt_fit
from escalation_risk.model.metrics import baseline_scores, bootstrap_intervals, expected_calibration_error
from escalation_risk.model.points import example_points, night_points, report_points
from escalation_risk.model.training import LGB_PARAMS, _config, _folds, _lgb_params, fit_examples
from escalation_risk.synth import generate_district

FAMILIES = ("velocity", "after_mediation", "circle", "text_model")
# benchmarks/ablation.py's design: monthly re-scoring, the four families off (the default model).
CONFIG = {"rescore_every_days": 30, "max_rescores": 6, "families_off": list(FAMILIES)}
CUTOFF = pd.Timestamp("2024-07-01")
HORIZON = 90


def build(persons: int, seed: int, cache: Path | None) -> tuple[dict, Any]:
    """The district's training examples (labelled points, features, labels), its held-out
    views (report time, nights), and the default model when this call trained it (None: from the cache)."""
    path = cache / f"c{persons // 1000}k_s{seed}.pkl" if cache else None
    if path and path.is_file():
        return pickle.loads(path.read_bytes()), None
    key = Path(__file__).resolve().parents[1] / "data" / "sample" / "SAMPLE_KEY"  # public on purpose
    ds = generate_district(persons, seed=seed, pseudonym_key=key)
    known = ds.cut(CUTOFF)
    cfg = _config(CONFIG)
    points = example_points(known, every_days=cfg["rescore_every_days"], max_rescores=cfg["max_rescores"],
                            until=CUTOFF)
    got: dict = {}

    def labels(pts: pd.DataFrame, labelled: np.ndarray) -> np.ndarray:
        got["y"] = make_labels(known, pts, horizon_days=HORIZON).to_numpy()
        return got["y"]

    def features(pts: pd.DataFrame) -> pd.DataFrame:
        got["X"] = build_features(known, pts)
        return got["X"].copy()

    start = pd.Timestamp(known.incidents["reported_at"].min())
    with threadpool_limits(limits=1):
        # The data's end, not the cut data's: as train_variants (and so ablation.py) passes it, the labelled
        # span runs to the cutoff rather than to the last record before it.
        model = fit_examples(points, labels, features, cfg, cutoff=CUTOFF, end=data_end(ds), start=start,
                             horizon_days=HORIZON, seed=0)
    end = CUTOFF + pd.DateOffset(years=1)
    views = {}
    rep = report_points(ds, CUTOFF, end)
    nights = night_points(ds, start=CUTOFF, end=end, horizon_days=HORIZON)
    first = ds.incidents.set_index("incident_id").loc[nights["dispute_id"], "reported_at"].to_numpy()
    for view, pts in {"report": rep, "nights": nights[first >= CUTOFF.to_datetime64()]}.items():
        y = make_labels(ds, pts.reset_index(drop=True), horizon_days=HORIZON).to_numpy()
        ok = ~np.isnan(y)
        pts = pts.reset_index(drop=True)[ok].reset_index(drop=True)
        views[view] = {"pts": pts, "y": y[ok], "X": build_features(ds, pts)}
    c = {"points": points, "y": got["y"], "X": got["X"], "start": start, "end": data_end(ds), "views": views}
    if path:
        path.write_bytes(pickle.dumps(c))
    return c, model


def fit(c: dict, overrides: dict | None = None):
    """The default model (``fit_examples``, as ``train`` runs it) on the cached examples."""
    cfg = _config({**CONFIG, **(overrides or {})})
    with threadpool_limits(limits=1):
        return fit_examples(c["points"], lambda pts, lab: c["y"], lambda pts: c["X"].copy(), cfg, cutoff=CUTOFF,
                            end=c["end"], start=c["start"], horizon_days=HORIZON, seed=0)


def targets(y: np.ndarray, p: np.ndarray, lr: np.ndarray, groups: np.ndarray, n_boot: int, seed: int) -> dict:
    """Lead in AUC and P@5% over the regression (paired, by dispute), and the model's ECE."""
    tv = bootstrap_intervals(y, {"model": (p, p), "logistic_regression": (lr, lr)}, groups=groups,
                             metrics=("roc_auc", "precision@5%"), n_boot=n_boot,
                             seed=seed).set_index(["scorer", "metric"])

    def g(s: str, k: str) -> list[float]:
        return [float(v) for v in tv.loc[(s, k), ["estimate", "lo", "hi"]]]
    return {"auc": g("model", "roc_auc")[0], "lead": g("model - logistic_regression", "roc_auc"),
            "p5": g("model", "precision@5%")[0], "p5_lr": g("logistic_regression", "precision@5%")[0],
            "p5_diff": g("model - logistic_regression", "precision@5%"), "ece": expected_calibration_error(y, p)}


def _fmt(v) -> str:
    return f"{v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]"


def fmt(t: dict) -> str:
    return (f"AUC {t['auc']:.3f}, lead {_fmt(t['lead'])}, P@5% {t['p5']:.3f} vs {t['p5_lr']:.3f} "
            f"({_fmt(t['p5_diff'])}), ECE {t['ece']:.3f}")


def disagreements(m, c: dict, view: str = "report", top: int = 12) -> dict:
    """The model's and the regression's top 5%: who only one of them picks, how often those
    escalated, and the features that set the two sets apart."""
    v = c["views"][view]
    X, y = v["X"], v["y"]
    M = m._matrix(X)
    p, lr = m.predict_proba(X), baseline_scores(X, m.baselines)["logistic_regression"][0]
    trees = np.asarray(m.booster.predict(M, raw_score=True))
    k = int(round(0.05 * len(y)))

    def top_k(s: np.ndarray) -> set:
        return set(np.argsort(-s, kind="stable")[:k].tolist())
    tm, tl, tt = top_k(p), top_k(lr), top_k(trees)
    a, b, both = (np.array(sorted(s), dtype=int) for s in (tl - tm, tm - tl, tm & tl))
    terms = logistic_terms(M, m.feature_names, m.baselines["logistic_regression"])
    shap = np.asarray(m.booster.predict(M, pred_contrib=True))[:, :-1]
    Xtr = c["X"]
    rows = []
    for j, f in enumerate(m.feature_names):
        r = {"feature": f, "lr_only": float(terms[a, j].mean()), "model_only": float(terms[b, j].mean()),
             "trees_lr_only": float(shap[a, j].mean()), "trees_model_only": float(shap[b, j].mean()),
             "splits": int(m.booster.feature_importance("split")[j])}
        if f not in CATEGORICAL:
            q99 = float(np.nanquantile(Xtr[f].to_numpy(float), 0.99))
            x = X[f].to_numpy(float)
            r.update(q99=q99, above_q99_lr_only=float(np.mean(x[a] > q99)),
                     above_q99_model_only=float(np.mean(x[b] > q99)))
        rows.append(r)
    d = pd.DataFrame(rows)
    d["lr_term_gap"] = d["lr_only"] - d["model_only"]
    d = d.reindex(d["lr_term_gap"].abs().sort_values(ascending=False).index).head(top)
    out = {"n": int(len(y)), "k": k, "overlap": int(len(both)), "lr_only": int(len(a)),
           "lr_only_escalated": int(y[a].sum()), "model_only": int(len(b)), "model_only_escalated": int(y[b].sum()),
           "trees_alone_p5": float(y[list(tt)].mean()), "features": d.to_dict(orient="records")}
    print(f"top 5% ({k} of {len(y)}): both {len(both)}; only the regression {len(a)} ({int(y[a].sum())} escalated); "
          f"only the model {len(b)} ({int(y[b].sum())} escalated); the trees alone {out['trees_alone_p5']:.3f}")
    print(d.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return out


def remedies(m, c: dict, n_boot: int, seed: int) -> list[dict]:
    """The general remedies, each judged by the windows' log-loss (what the search compares)."""
    names = m.feature_names
    pts, y = c["points"], c["y"]
    labelled, folds, _ = _folds(pts, cutoff=min(CUTOFF, c["end"]), start=c["start"], horizon=pd.Timedelta(days=HORIZON),
                                validation_months=6, folds=3)
    pts = pts[labelled].reset_index(drop=True)
    folds = [(tr[labelled], wi[labelled]) for tr, wi in folds]
    ok = ~np.isnan(y)
    pts, y = pts[ok].reset_index(drop=True), np.nan_to_num(y[ok]).astype(int)
    folds = [(tr[ok], wi[ok]) for tr, wi in folds]
    F = c["X"][names]
    groups = pts["dispute_id"].to_numpy(dtype=object)
    tr_ = m.manifest["training"]
    params = _lgb_params({**LGB_PARAMS, "seed": 0, "deterministic": True, "num_threads": 1, "force_col_wise": True},
                         tr_["search"][tr_["chosen"]]["params"], names)
    v = c["views"]["report"]
    Xh, yh, gh = v["X"][names], v["y"], v["pts"]["dispute_id"].to_numpy(dtype=object)
    cats = [n for n in names if n in CATEGORICAL]

    def oof_logit(rows: np.ndarray) -> np.ndarray:
        idx = np.flatnonzero(rows)
        out = np.empty(len(idx))
        for fa, fb in GroupKFold(5).split(idx, groups=groups[idx]):
            out[fb] = _logit(_logistic_proba(F.iloc[idx[fb]], _fit_logistic(F.iloc[idx[fa]], y[idx[fa]], 0)))
        return out

    def shrunk(rows: np.ndarray, X_out: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold log-odds on ``rows``, Platt-shrunk there; the same map on the rows' regression's ``X_out``."""
        lo = oof_logit(rows)
        pl = platt_fit(lo.reshape(-1, 1), y[rows])
        s, b0 = float(pl.coef_[0, 0]), float(pl.intercept_[0])
        return s * lo + b0, s * _logit(_logistic_proba(X_out, _fit_logistic(F[rows], y[rows], 0))) + b0

    def run(p: dict, init: bool, rounds: int, esr: int):
        curves, raws = [], []
        for tr, wi in folds:
            itr, iw = shrunk(tr, F[wi]) if init else (None, None)
            dtr = lgb.Dataset(F[tr], y[tr], init_score=itr, categorical_feature=cats, free_raw_data=False)
            dva = lgb.Dataset(F[wi], y[wi], init_score=iw, reference=dtr)
            rec: dict = {}
            b = lgb.train(p, dtr, num_boost_round=rounds, valid_sets=[dva], valid_names=["w"],
                          callbacks=[lgb.early_stopping(esr, verbose=False), lgb.record_evaluation(rec)])
            curves.append(np.asarray(rec["w"]["binary_logloss"]))
            raws.append((b, wi, iw))
        common = min(len(x) for x in curves)
        mc = np.mean([x[:common] for x in curves], axis=0)
        n = int(np.argmin(mc)) + 1
        raw_w = np.concatenate([b.predict(F[wi], raw_score=True, num_iteration=n) + (iw if init else 0)
                                for b, wi, iw in raws])
        ia, ih = shrunk(np.ones(len(y), dtype=bool), Xh) if init else (None, None)
        b = lgb.train(p, lgb.Dataset(F, y, init_score=ia, categorical_feature=cats), num_boost_round=n)
        return float(mc[n - 1]), n, b.predict(Xh, raw_score=True) + (ih if init else 0), raw_w

    yw = np.concatenate([y[wi] for _, wi in folds])
    lr_w = np.concatenate([_logit(_logistic_proba(F[wi], _fit_logistic(F[tr], y[tr], 0))) for tr, wi in folds])
    lr_h = _logit(_logistic_proba(Xh, m.baselines["logistic_regression"]))
    out = []
    for name, p, init, rounds, esr in [
            ("default set", params, False, 600, 50),
            ("a third of the learning rate", {**params, "learning_rate": LGB_PARAMS["learning_rate"] / 3}, False,
             1800, 150),
            ("boosted from the regression", params, True, 600, 50)]:
        c0 = time.process_time()
        ll, n, raw, raw_w = run(p, init, rounds, esr)
        bl = fit_blend(raw_w, lr_w, yw, method="auto", seed=0)
        r = {"remedy": name, "window_log_loss": ll, "trees": n, "cpu_s": time.process_time() - c0,
             "blend_chosen": bl["chosen"], "blend_cv": bl["cv"],
             "alone": targets(yh, 1 / (1 + np.exp(-raw)), 1 / (1 + np.exp(-lr_h)), gh, n_boot, seed),
             "blended": targets(yh, 1 / (1 + np.exp(-(blend_raw(raw, lr_h, bl) if bl["chosen"] else raw))),
                                1 / (1 + np.exp(-lr_h)), gh, n_boot, seed)}
        out.append(r)
        print(f"{name}: windows' log-loss {ll:.5f} at {n} trees ({r['cpu_s']:.0f} s CPU); blend chosen "
              f"{bl['chosen']} {bl['cv']}\n   alone:   {fmt(r['alone'])}\n   blended: {fmt(r['blended'])}",
              flush=True)
    return out


def spread_examples(persons: int, seed: int, cache: Path | None) -> dict:
    """The district's training examples with re-scores spread over each period (``phase="spread"``):
    labelled points, labels and features, as ``build`` keeps them for the default's."""
    path = cache / f"c{persons // 1000}k_s{seed}_spread.pkl" if cache else None
    if path and path.is_file():
        return pickle.loads(path.read_bytes())
    key = Path(__file__).resolve().parents[1] / "data" / "sample" / "SAMPLE_KEY"  # public on purpose
    ds = generate_district(persons, seed=seed, pseudonym_key=key)
    known = ds.cut(CUTOFF)
    cfg = _config(CONFIG)
    points = example_points(known, every_days=cfg["rescore_every_days"], max_rescores=cfg["max_rescores"],
                            until=CUTOFF, phase="spread")
    start = pd.Timestamp(known.incidents["reported_at"].min())
    labelled, _, _ = _folds(points, cutoff=min(CUTOFF, data_end(ds)), start=start,
                            horizon=pd.Timedelta(days=HORIZON), validation_months=6, folds=3)
    lp = points[labelled].reset_index(drop=True)
    y = make_labels(known, lp, horizon_days=HORIZON).to_numpy()
    # As fit_examples: the features of the points the cut data can label (y: every labelled point's).
    c = {"points": points, "y": y, "X": build_features(known, lp[~np.isnan(y)].reset_index(drop=True)),
         "start": start, "end": data_end(ds)}
    if path:
        path.write_bytes(pickle.dumps(c))
    return c


def _setup(m, c: dict) -> dict:
    """The labelled training examples of ``c``, their rolling-origin folds, and the default's chosen parameter set."""
    names = m.feature_names
    pts, y = c["points"], c["y"]
    labelled, folds, _ = _folds(pts, cutoff=min(CUTOFF, c["end"]), start=c["start"],
                                horizon=pd.Timedelta(days=HORIZON), validation_months=6, folds=3)
    pts = pts[labelled].reset_index(drop=True)
    folds = [(tr[labelled], wi[labelled]) for tr, wi in folds]
    ok = ~np.isnan(y)
    pts, y = pts[ok].reset_index(drop=True), np.nan_to_num(y[ok]).astype(int)
    folds = [(tr[ok], wi[ok]) for tr, wi in folds]
    tr_ = m.manifest["training"]
    params = _lgb_params({**LGB_PARAMS, "seed": 0, "deterministic": True, "num_threads": 1, "force_col_wise": True},
                         tr_["search"][tr_["chosen"]]["params"], names)
    F = c["X"][names]
    return {"names": names, "pts": pts, "y": y, "folds": folds, "F": F, "M": m._matrix(F), "params": params,
            "cats": [n for n in names if n in CATEGORICAL]}


def _cum_raw(b: lgb.Booster, M: np.ndarray, n: int) -> np.ndarray:
    """Raw scores of ``b``'s first 1..n trees on ``M`` (n x rows), one tree at a time."""
    out = np.empty((n, len(M)))
    acc = np.zeros(len(M))
    for i in range(n):
        acc = acc + b.predict(M, raw_score=True, start_iteration=i, num_iteration=1)
        out[i] = acc
    return out


def bagged(m, c: dict, s: dict, *, k: int, overrides: dict | None = None, name: str = "",
           n_boot: int = 300, seed: int = 0, ev: dict | None = None, drop: tuple[str, ...] = ()) -> dict:
    """``k`` boosters of one parameter set (the default's chosen one with ``overrides``),
    seeds 0..k-1 (their row and feature subsamples), their raw scores averaged. The number
    of trees is the minimum of the fold-averaged window log-loss of the average, as the
    search chooses it; then the blend with the regression and the calibration on the windows,
    the refit of the k boosters on every example, and both held-out views' targets. ``ev``:
    the examples whose windows judge (default ``s``'s own), e.g. re-scores at every age of a
    dispute, so that two ways of choosing the training points are judged on the same windows.
    ``drop``: feature families left out (of the trees and of the regression alike)."""
    from escalation_risk.features import REGISTRY
    from escalation_risk.model.calibration import apply_calibrator, fit_calibrator
    c0 = time.process_time()
    ev = ev or s
    gone = set(REGISTRY.excluded(list(drop))) if drop else set()
    idx = [j for j, n in enumerate(s["names"]) if n not in gone]
    keep = [s["names"][j] for j in idx]
    y, F, M = ev["y"], ev["F"][keep], ev["M"][:, idx]
    folds = [(tr, wi) for (tr, _), (_, wi) in zip(s["folds"], ev["folds"])]
    ys, Fs = s["y"], s["F"][keep]
    cats = [n for n in s["cats"] if n in keep]
    p = {**s["params"], **(overrides or {})}
    per_fold = []
    for tr, wi in folds:
        dtr = lgb.Dataset(Fs[tr], ys[tr], categorical_feature=cats, free_raw_data=False)
        dva = lgb.Dataset(F[wi], y[wi], reference=dtr)
        members = [lgb.train({**p, "seed": j}, dtr, num_boost_round=600, valid_sets=[dva], valid_names=["w"],
                             callbacks=[lgb.early_stopping(50, verbose=False)]) for j in range(k)]
        per_fold.append(members)
    common = min(b.num_trees() for ms in per_fold for b in ms)
    curves, cum = [], []
    for (_tr, wi), members in zip(folds, per_fold):
        r = np.mean([_cum_raw(b, M[wi], common) for b in members], axis=0)
        pr = 1 / (1 + np.exp(-r))
        yy = y[wi][None, :]
        curves.append(-np.mean(yy * np.log(np.clip(pr, 1e-15, 1)) + (1 - yy) * np.log(np.clip(1 - pr, 1e-15, 1)),
                               axis=1))
        cum.append(r)
    mc = np.mean(curves, axis=0)
    n = int(np.argmin(mc)) + 1
    raw_w = np.concatenate([r[n - 1] for r in cum])
    yw = np.concatenate([y[wi] for _, wi in folds])
    lr_w = np.concatenate([_logit(_logistic_proba(F[wi], _fit_logistic(Fs[tr], ys[tr], 0))) for tr, wi in folds])
    bl = fit_blend(raw_w, lr_w, yw, method="auto", seed=0)
    rw = blend_raw(raw_w, lr_w, bl) if bl["chosen"] else raw_w
    cal = fit_calibrator(rw, yw, method="auto", folds=5, seed=0)
    dall = lgb.Dataset(Fs, ys, categorical_feature=cats)
    lr_all = _fit_logistic(Fs, ys, 0)  # the regression on the same training points (the default's: its own)
    final = [lgb.train({**p, "seed": j}, dall, num_boost_round=n) for j in range(k)]
    out = {"remedy": name, "k": k, "overrides": overrides or {}, "drop": list(drop),
           "window_log_loss": float(mc[n - 1]), "trees": n,
           "blend_chosen": bl["chosen"], "blend": {kk: bl[kk] for kk in ("w_trees", "w_linear", "cv")},
           "calibration": cal["method"], "views": {}}
    for view in ("report", "nights"):
        v = c["views"][view]
        Mh = m._matrix(v["X"])[:, idx]
        raw = np.mean([b.predict(Mh, raw_score=True) for b in final], axis=0)
        lr = _logistic_proba(v["X"][keep], lr_all)
        rb = blend_raw(raw, _logit(lr), bl) if bl["chosen"] else raw
        out["views"][view] = targets(v["y"], apply_calibrator(rb, cal), lr,
                                     v["pts"]["dispute_id"].to_numpy(dtype=object), n_boot, seed)
    out["cpu_s"] = time.process_time() - c0
    print(f"{name} (k={k}, {overrides or {}}): windows' log-loss {out['window_log_loss']:.5f} at {n} trees, blend "
          f"{bl['chosen']} ({bl['w_trees']:.2f}/{bl['w_linear']:.2f}), {cal['method']}, {out['cpu_s']:.0f} s CPU\n"
          f"   report: {fmt(out['views']['report'])}\n   nights: {fmt(out['views']['nights'])}", flush=True)
    return out


BAG_REMEDIES = {
    "default": (1, None),
    "bag3": (3, None),
    "bag5": (5, None),
    "extra_trees": (1, {"extra_trees": True}),
    "bag5_extra_trees": (5, {"extra_trees": True}),
    "ff05": (1, {"feature_fraction": 0.5}),
    "bag5_ff05": (5, {"feature_fraction": 0.5}),
    "bag5_sub05": (5, {"bagging_fraction": 0.5, "feature_fraction": 0.5}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--persons", type=int, default=40000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[11, 13, 17])
    ap.add_argument("--n-boot", type=int, default=300)
    ap.add_argument("--cache", default=None, help="keep each district's examples and views here")
    ap.add_argument("--no-remedies", action="store_true", help="the targets and disagreements only")
    ap.add_argument("--bag", nargs="*", default=None, choices=sorted(BAG_REMEDIES),
                    help="bagging / regularisation remedies judged by the windows, both views")
    ap.add_argument("--drop", nargs="*", default=None, help="refit without each of these feature families in turn")
    ap.add_argument("--spread", action="store_true",
                    help="training re-scores at a fixed or a spread phase, judged on the same (spread) windows")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    cache = Path(args.cache) if args.cache else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in args.seeds:
        t0, c0 = time.perf_counter(), time.process_time()
        c, m = build(args.persons, seed, cache)
        c_build = time.process_time() - c0
        m = m or fit(c)
        run: dict = {"persons": args.persons, "seed": seed, "views": {}}
        for view in ("report", "nights"):
            v = c["views"][view]
            p, lr = m.predict_proba(v["X"]), baseline_scores(v["X"], m.baselines)["logistic_regression"][0]
            t = targets(v["y"], p, lr, v["pts"]["dispute_id"].to_numpy(dtype=object), args.n_boot, seed)
            run["views"][view] = {**t, "n": int(len(v["y"])), "positives": int(v["y"].sum())}
            print(f"{args.persons:,} people, seed {seed}, {view} ({len(v['y']):,} disputes, "
                  f"{int(v['y'].sum())} escalated): {fmt(t)}", flush=True)
        tr = m.manifest["training"]
        run["model"] = {"set": tr["search"][tr["chosen"]]["params"], "trees": tr["best_iteration"],
                        "linear": m.manifest.get("linear_choice"), "n_train": tr["n_train"]}
        print(f"model: {run['model']}")
        if args.spread:
            s = _setup(m, c)
            sp = _setup(m, spread_examples(args.persons, seed, cache))
            run["spread"] = [bagged(m, c, s, k=1, name="fixed phase, judged on spread windows", ev=sp,
                                    n_boot=args.n_boot, seed=seed),
                             bagged(m, c, sp, k=1, name="spread phase, judged on spread windows",
                                    n_boot=args.n_boot, seed=seed)]
        if args.drop:
            s = _setup(m, c)
            run["drop"] = [bagged(m, c, s, k=1, name=f"without {f}", drop=(f,), n_boot=args.n_boot, seed=seed)
                           for f in args.drop]
        if args.bag is not None:
            s = _setup(m, c)
            run["bag"] = [bagged(m, c, s, k=BAG_REMEDIES[r][0], overrides=BAG_REMEDIES[r][1], name=r,
                                 n_boot=args.n_boot, seed=seed) for r in args.bag]
        elif not (args.spread or args.drop):
            run["disagreements"] = disagreements(m, c)
        if not args.no_remedies:
            run["remedies"] = remedies(m, c, args.n_boot, seed)
        run["cost"] = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "build_cpu_s": c_build,
                       "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                       "load_avg": os.getloadavg()}
        print(f"seed {seed}: {run['cost']}", flush=True)
        runs.append(run)
        if args.out:
            Path(args.out).write_text(json.dumps(runs, default=float, indent=1))


if __name__ == "__main__":
    main()
