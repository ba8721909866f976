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

- **The sixth pass** (``--sixth [disagree cap activity extra]``): the training's monthly re-scores
  capped at 6, 12 or not at all (each dispute's open period counting once, as on the nights),
  judged by night-like windows (every dispute open on the night of day 10 of each month of the
  rolling-origin windows, labelled from the cut data); the activity family added, judged by the
  search's windows and by the night-like ones, with its paired change on both held-out views;
  the nights' top-5% disagreements. ``--extra-grid``: the search given each parameter set's
  extra-trees twin beside it.
- **The seventh pass** (``--seventh``): the search given each parameter set's twin at half the
  learning rate (round cap and patience doubled, so early stopping ends it), the default being
  the first four rows of the same search; both views of both, and their paired change.
  ``--separation``: the separation family (features/separation.py) added to the default's chosen
  set, judged by the search's windows, with its paired change on both views.

The features, labels and views of a district are built once and kept with ``--cache DIR``
(one pickle per size and seed), so a rerun of the analysis costs only the fits.

    python benchmarks/lead.py --persons 40000 --seeds 11 13 17 --cache /tmp/lead --out lead40.json
    /work/wt/big python benchmarks/lead.py --persons 100000 --seeds 11 --cache /tmp/lead --out lead100_11.json
    python benchmarks/lead.py --persons 40000 --seeds 11 --cache /tmp/lead --sixth disagree cap activity --out s11.json
    /work/wt/big python benchmarks/lead.py --persons 100000 --seeds 11 --cache /tmp/lead --no-remedies --extra-grid
    python benchmarks/lead.py --persons 40000 --seeds 11 --cache /tmp/lead --seventh --out seventh40_11.json
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
from escalation_risk.model.bagging import every_tree, fit_bag, search_bag
from escalation_risk.model.baselines import _fit_logistic, _logistic_proba, logistic_terms
from escalation_risk.model.blend import _logit, blend_raw, fit_blend
from escalation_risk.model.calibration import platt_fit
from escalation_risk.model.metrics import baseline_scores, bootstrap_intervals, expected_calibration_error
from escalation_risk.model.points import example_points, night_points, report_points
from escalation_risk.model.training import (
    LGB_PARAMS,
    _config,
    _lgb_dataset,
    _lgb_params,
    _recency_weight,
    bag_windows,
    fit_examples,
    labelled_examples,
)
from escalation_risk.synth import generate_district

FAMILIES = ("velocity", "after_mediation", "circle", "text_model", "activity", "separation")
# benchmarks/ablation.py's design: monthly re-scoring, the four families off (the default model).
CONFIG = {"rescore_every_days": 30, "max_rescores": 6, "families_off": list(FAMILIES)}
CUTOFF = pd.Timestamp("2024-07-01")
HORIZON = 90


def district(persons: int, seed: int) -> tuple[Any, Any]:
    """A fresh synthetic district (the sample's public key) and its data as known at the cutoff."""
    key = Path(__file__).resolve().parents[1] / "data" / "sample" / "SAMPLE_KEY"  # public on purpose
    ds = generate_district(persons, seed=seed, pseudonym_key=key)
    return ds, ds.cut(CUTOFF)


def held_out_views(ds) -> dict:
    """The held-out year after the cutoff, two views: each dispute at its report time
    (``report``), and the disputes first reported in that year on each monthly night
    while open (``nights``); points, labels and features of each."""
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
    return views


def build(persons: int, seed: int, cache: Path | None) -> tuple[dict, Any]:
    """The district's training examples (labelled points, features, labels), its held-out
    views (report time, nights), and the default model when this call trained it (None: from the cache)."""
    path = cache / f"c{persons // 1000}k_s{seed}.pkl" if cache else None
    if path and path.is_file():
        return pickle.loads(path.read_bytes()), None
    ds, known = district(persons, seed)
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
    views = held_out_views(ds)
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
    st = _setup(m, c)
    names, pts, y, folds, F, params = st["names"], st["pts"], st["y"], st["folds"], st["F"], st["params"]
    groups = pts["dispute_id"].to_numpy(dtype=object)
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
                          keep_training_booster=True,
                          callbacks=[lgb.early_stopping(esr, verbose=False), lgb.record_evaluation(rec)])
            curves.append(np.asarray(rec["w"]["binary_logloss"]))
            raws.append((every_tree(b), wi, iw))
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
    ds, known = district(persons, seed)
    cfg = _config(CONFIG)
    points = example_points(known, every_days=cfg["rescore_every_days"], max_rescores=cfg["max_rescores"],
                            until=CUTOFF, phase="spread")
    start = pd.Timestamp(known.incidents["reported_at"].min())
    got: dict = {}

    def labels(pts: pd.DataFrame, labelled: np.ndarray) -> np.ndarray:
        got["y"] = make_labels(known, pts, horizon_days=HORIZON).to_numpy()
        return got["y"]

    # As fit_examples: the features of the points the cut data can label (y: every labelled point's).
    lp, _, _, _ = labelled_examples(points, labels, cfg, cutoff=CUTOFF, end=data_end(ds), start=start,
                                    horizon_days=HORIZON)
    c = {"points": points, "y": got["y"], "X": build_features(known, lp), "start": start, "end": data_end(ds)}
    if path:
        path.write_bytes(pickle.dumps(c))
    return c


def _setup(m, c: dict) -> dict:
    """The labelled training examples of ``c``, their rolling-origin folds (``labelled_examples``, as
    ``fit_examples`` makes them), and the default's chosen parameter set."""
    names = m.feature_names
    cfg = _config(CONFIG)
    pts, y, folds, _ = labelled_examples(c["points"], lambda pts, labelled: c["y"], cfg, cutoff=CUTOFF, end=c["end"],
                                         start=c["start"], horizon_days=HORIZON)
    tr_ = m.manifest["training"]
    params = _lgb_params({**LGB_PARAMS, "seed": 0, "deterministic": True, "num_threads": cfg["num_threads"],
                          "force_col_wise": True}, tr_["search"][tr_["chosen"]]["params"], names)
    return {"names": names, "pts": pts, "y": y, "folds": folds, "F": c["X"][names], "params": params, "cfg": cfg}


def bagged(m, c: dict, s: dict, *, k: int, overrides: dict | None = None, name: str = "",
           n_boot: int = 300, seed: int = 0, ev: dict | None = None, drop: tuple[str, ...] = (),
           add: tuple[str, ...] = ()) -> dict:
    """``k`` boosters of one parameter set (the default's chosen one with ``overrides``), their
    raw scores averaged, as ``fit_examples`` does with ``config={"bags": k}``: the number of trees
    chosen by the windows on their mean (``search_bag``), the blend with the regression and the
    calibration fitted on the windows, the refit on every example (``fit_bag``), and both held-out
    views' targets. ``ev``: the examples whose windows judge (default ``s``'s own), e.g. re-scores
    at every age of a dispute, so that two ways of choosing the training points are judged on the
    same windows. ``drop``: feature families left out (of the trees and of the regression alike);
    ``add``: features the default leaves out, added to both. The held-out scores are kept in
    ``out["scores"]`` (not written to JSON) for paired comparisons between remedies."""
    from escalation_risk.features import REGISTRY
    from escalation_risk.model.calibration import apply_calibrator, fit_calibrator
    c0 = time.process_time()
    ev = ev or s
    gone = set(REGISTRY.excluded(list(drop))) if drop else set()
    keep = [n for n in s["names"] if n not in gone] + [n for n in add if n not in s["names"]]
    y, F = ev["y"], ev["F"][keep]
    folds = [(tr, wi) for (tr, _), (_, wi) in zip(s["folds"], ev["folds"])]
    ys, Fs, cfg = s["y"], s["F"][keep], s["cfg"]
    p = {**s["params"], **(overrides or {})}
    trs, wins = bag_windows(Fs, ys, s["pts"]["as_of"], folds, cfg, F_window=F, y_window=y)
    n, ll, raws = search_bag(p, trs, wins, k=k, seed=0, rounds=cfg["num_boost_round"],
                             early_stopping=cfg["early_stopping_rounds"])
    del trs, wins
    raw_w = np.concatenate(raws)
    yw = np.concatenate([y[wi] for _, wi in folds])
    lr_w = np.concatenate([_logit(_logistic_proba(F[wi], _fit_logistic(Fs[tr], ys[tr], 0))) for tr, wi in folds])
    bl = fit_blend(raw_w, lr_w, yw, method="auto", seed=0)
    rw = blend_raw(raw_w, lr_w, bl) if bl["chosen"] else raw_w
    cal = fit_calibrator(rw, yw, method="auto", folds=5, seed=0)
    lr_all = _fit_logistic(Fs, ys, 0)  # the regression on the same training points (the default's: its own)
    final = fit_bag(p, _lgb_dataset(Fs, ys, _recency_weight(s["pts"]["as_of"], cfg["recency_half_life_days"])),
                    k=k, seed=0, n_trees=n)
    out = {"remedy": name, "k": k, "overrides": overrides or {}, "drop": list(drop),
           "window_log_loss": ll, "trees": n,
           "blend_chosen": bl["chosen"], "blend": {kk: bl[kk] for kk in ("w_trees", "w_linear", "cv")},
           "calibration": cal["method"], "views": {}, "scores": {}}
    for view in ("report", "nights"):
        v = c["views"][view]
        raw = final.predict(v["X"][keep], raw_score=True)
        lr = _logistic_proba(v["X"][keep], lr_all)
        rb = blend_raw(raw, _logit(lr), bl) if bl["chosen"] else raw
        out["scores"][view] = apply_calibrator(rb, cal)
        out["views"][view] = targets(v["y"], out["scores"][view], lr,
                                     v["pts"]["dispute_id"].to_numpy(dtype=object), n_boot, seed)
    out["cpu_s"] = time.process_time() - c0
    print(f"{name} (k={k}, {overrides or {}}): windows' log-loss {out['window_log_loss']:.5f} at {n} trees, blend "
          f"{bl['chosen']} ({bl['w_trees']:.2f}/{bl['w_linear']:.2f}), {cal['method']}, {out['cpu_s']:.0f} s CPU\n"
          f"   report: {fmt(out['views']['report'])}\n   nights: {fmt(out['views']['nights'])}", flush=True)
    return out



# --- Issue 29, sixth pass: the re-score cap against the nights, and the activity family. ---
NO_CAP = 60  # re-scores a dispute may have in training: five years of months, i.e. no cap (checked)
ACTIVITY = ("act_days_since_contact", "act_days_since_dispute_contact", "act_age_vs_category")


def _window_masks(pts: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, cfg: dict) -> list[np.ndarray]:
    """The rolling-origin windows' masks over ``pts`` (labelled points), with the edges
    ``labelled_examples`` gives the training examples (they depend only on the cutoff)."""
    from escalation_risk.model.training import _folds
    _, folds, _ = _folds(pts, cutoff=min(CUTOFF, end), start=start, horizon=pd.Timedelta(days=HORIZON),
                         validation_months=cfg["validation_months"], folds=cfg["folds"])
    return [wi for _, wi in folds]


def sixth_build(persons: int, seed: int, cache: Path | None) -> dict:
    """A district's training examples with every monthly re-score while open (no cap; ``k``
    says which re-score each is, so a cap is a subset), their features (the activity family
    included), the night-like windows (every dispute open on the night of day 10 of each
    month of the validation span, as the nightly job scores them, labelled from the cut
    data), and the held-out views."""
    path = cache / f"six{persons // 1000}k_s{seed}.pkl" if cache else None
    if path and path.is_file():
        return pickle.loads(path.read_bytes())
    ds, known = district(persons, seed)
    cfg = _config(CONFIG)
    points = example_points(known, every_days=30, max_rescores=NO_CAP, until=CUTOFF)
    start = pd.Timestamp(known.incidents["reported_at"].min())

    def labels(pts: pd.DataFrame, labelled: np.ndarray) -> np.ndarray:
        return make_labels(known, pts, horizon_days=HORIZON).to_numpy()

    pts, y, folds, _ = labelled_examples(points, labels, cfg, cutoff=CUTOFF, end=data_end(ds), start=start,
                                         horizon_days=HORIZON)
    rep = known.incidents.set_index("incident_id").loc[pts["dispute_id"], "reported_at"].to_numpy()
    k = np.rint((pts["as_of"].to_numpy() - rep) / np.timedelta64(30, "D")).astype(int)
    if k.max() >= NO_CAP:
        raise ValueError(f"a dispute reached {NO_CAP} re-scores: raise NO_CAP")
    X = build_features(known, pts)
    # Night-like windows: the nights of the validation span, on the data known at the cutoff.
    val0 = CUTOFF - pd.Timedelta(days=HORIZON) - pd.DateOffset(months=cfg["validation_months"])
    nights = night_points(known, start=val0, end=CUTOFF - pd.Timedelta(days=HORIZON), horizon_days=HORIZON)
    yn = make_labels(known, nights, horizon_days=HORIZON).to_numpy()
    ok = ~np.isnan(yn)
    nights, yn = nights[ok].reset_index(drop=True), yn[ok].astype(int)
    night = {"pts": nights, "y": yn, "X": build_features(known, nights),
             "windows": _window_masks(nights, start, data_end(ds), cfg)}
    views = held_out_views(ds)
    c = {"pts": pts, "y": y, "k": k, "X": X, "folds": folds, "night": night, "views": views,
         "start": start, "end": data_end(ds)}
    if path:
        path.write_bytes(pickle.dumps(c))
    return c


def _subset(c6: dict, cap: int, params: dict, names: list[str]) -> dict:
    """``bagged``'s examples (``_setup``'s dict) for the training re-scores up to ``cap``."""
    keep = c6["k"] <= cap
    cfg = _config({**CONFIG, "max_rescores": cap})
    return {"names": names, "pts": c6["pts"][keep].reset_index(drop=True), "y": c6["y"][keep],
            "folds": [(tr[keep], wi[keep]) for tr, wi in c6["folds"]], "F": c6["X"][keep].reset_index(drop=True),
            "params": params, "cfg": cfg}


def _night_ev(c6: dict, n_folds: int) -> dict:
    """The night-like windows as ``bagged``'s ``ev`` (only their window masks are read)."""
    w = c6["night"]["windows"]
    if len(w) != n_folds:
        raise ValueError(f"{len(w)} night windows against {n_folds} folds")
    return {"y": c6["night"]["y"], "F": c6["night"]["X"], "folds": [(None, wi) for wi in w]}


def paired(c6: dict, a: dict, b: dict, n_boot: int, seed: int) -> dict:
    """The change from ``b`` to ``a`` on both held-out views: paired bootstrap by dispute (the ablation's)."""
    out = {}
    for view in ("report", "nights"):
        v = c6["views"][view]
        tv = bootstrap_intervals(v["y"], {"model": (a["scores"][view],) * 2, "base": (b["scores"][view],) * 2},
                                 groups=v["pts"]["dispute_id"].to_numpy(dtype=object),
                                 metrics=("roc_auc", "precision@5%"), n_boot=n_boot, seed=seed).set_index(
                                     ["scorer", "metric"])
        out[view] = {m: [float(x) for x in tv.loc[("model - base", m), ["estimate", "lo", "hi"]]]
                     for m in ("roc_auc", "precision@5%")}
    return out


def sixth(persons: int, seed: int, cache: Path | None, n_boot: int, parts: set[str]) -> dict:
    """The sixth pass on one district: the default model on the capped examples (its search
    chooses the parameter set every variant uses), the nights' disagreements, the re-score cap
    judged by the night-like windows, the activity family judged by both sets of windows with
    its paired change on both views, and extra trees as further parameter sets of the search."""
    from escalation_risk.features import REGISTRY
    from escalation_risk.model.training import PARAM_GRID
    c6 = sixth_build(persons, seed, cache)
    cap0 = CONFIG["max_rescores"]
    keep = c6["k"] <= cap0
    y6, X6 = c6["y"][keep], c6["X"][keep].reset_index(drop=True)
    pts6 = c6["pts"][keep].reset_index(drop=True)
    c = {"views": c6["views"], "X": X6}
    out: dict = {"persons": persons, "seed": seed, "n_examples": {"cap6": int(keep.sum()), "no_cap": len(c6["y"])},
                 "share_at_cap": float(np.mean(pd.Series(c6["k"]).groupby(c6["pts"]["dispute_id"].to_numpy())
                                               .max().to_numpy() >= cap0)),
                 "night_windows": [int(w.sum()) for w in c6["night"]["windows"]]}

    def fitted(overrides: dict | None = None):
        cfg = _config({**CONFIG, **(overrides or {})})
        with threadpool_limits(limits=1):
            return fit_examples(pts6, lambda p, lab: y6, lambda p: X6.copy(), cfg, cutoff=CUTOFF, end=c6["end"],
                                start=c6["start"], horizon_days=HORIZON, seed=0)
    m = fitted()
    tr_ = m.manifest["training"]
    out["default"] = {"set": tr_["search"][tr_["chosen"]]["params"], "trees": tr_["best_iteration"],
                      "search": [{kk: r[kk] for kk in ("params", "n_trees", "window_log_loss")} for r in tr_["search"]]}
    for view in ("report", "nights"):
        v = c6["views"][view]
        p, lr = m.predict_proba(v["X"]), baseline_scores(v["X"], m.baselines)["logistic_regression"][0]
        out["default"][view] = targets(v["y"], p, lr, v["pts"]["dispute_id"].to_numpy(dtype=object), n_boot, seed)
        print(f"{persons:,} people, seed {seed}, default, {view}: {fmt(out['default'][view])}", flush=True)
    print(f"default: {out['default']['set']} at {out['default']['trees']} trees", flush=True)
    if "disagree" in parts:
        out["disagreements_nights"] = disagreements(m, c, view="nights")
    s6 = _setup(m, {"points": pts6, "y": y6, "X": X6, "start": c6["start"], "end": c6["end"]})
    names, params = s6["names"], s6["params"]
    ev = _night_ev(c6, len(s6["folds"]))
    assert sum(int(wi.sum()) for _, wi in s6["folds"]) == sum(int(wi.sum()) for _, wi in _subset(c6, cap0, params,
                                                                                                    names)["folds"])

    def run(name: str, cap: int, add: tuple[str, ...] = (), judge: str = "night") -> dict:
        r = bagged(m, c, _subset(c6, cap, params, names), k=1, name=f"{name} [{judge} windows]", n_boot=n_boot,
                   seed=seed, ev=ev if judge == "night" else None, add=add)
        r["cap"], r["judge"] = cap, judge
        return r
    kept: dict[str, dict] = {}
    if "cap" in parts:
        out["cap"] = []
        for cap in (cap0, 12, NO_CAP):
            r = run(f"cap {cap}", cap)
            kept[f"cap{cap}"] = r
            out["cap"].append({kk: vv for kk, vv in r.items() if kk != "scores"})
        out["cap_paired_vs_6"] = {f"cap{cap}": paired(c6, kept[f"cap{cap}"], kept[f"cap{cap0}"], n_boot, seed)
                                  for cap in (12, NO_CAP)}
    if "activity" in parts:
        assert set(ACTIVITY) == {f.name for f in REGISTRY if f.family == "activity"}
        out["activity"] = []
        for judge in ("train", "night"):
            base = kept.get(f"cap{cap0}") if judge == "night" else None
            base = base or run("default", cap0, judge=judge)
            withf = run("with activity", cap0, add=ACTIVITY, judge=judge)
            out["activity"].append({"judge": judge, "base": {kk: vv for kk, vv in base.items() if kk != "scores"},
                                    "with": {kk: vv for kk, vv in withf.items() if kk != "scores"},
                                    "paired": paired(c6, withf, base, n_boot, seed)})
            print(f"activity, {judge} windows: {out['activity'][-1]['paired']}", flush=True)
    if "extra" in parts:
        grid = PARAM_GRID + [{**g, "extra_trees": True} for g in PARAM_GRID]
        mx = fitted({"param_grid": grid})
        trx = mx.manifest["training"]
        out["extra_grid"] = {"chosen": trx["chosen"], "set": trx["search"][trx["chosen"]]["params"],
                             "trees": trx["best_iteration"],
                             "search": [{kk: r[kk] for kk in ("params", "n_trees", "window_log_loss")}
                                        for r in trx["search"]]}
        for view in ("report", "nights"):
            v = c6["views"][view]
            p, lr = mx.predict_proba(v["X"]), baseline_scores(v["X"], mx.baselines)["logistic_regression"][0]
            out["extra_grid"][view] = targets(v["y"], p, lr, v["pts"]["dispute_id"].to_numpy(dtype=object), n_boot,
                                              seed)
            print(f"extra-trees grid, {view}: {fmt(out['extra_grid'][view])}", flush=True)
        print(f"extra-trees grid chose {out['extra_grid']['set']} ({out['extra_grid']['trees']} trees): "
              f"{[(r['params'], r['n_trees'], round(r['window_log_loss'], 5)) for r in out['extra_grid']['search']]}",
              flush=True)
    return out


# --- Issue 29, seventh pass: a slower learning rate as further parameter sets of the search. ---
SLOW_LR = 0.015  # half of LGB_PARAMS' 0.03; training._rounds doubles such a set's round cap and patience


def _examples(persons: int, seed: int, cache: Path | None) -> dict:
    """The default's training examples (monthly re-scores capped at 6) and held-out views: the
    sixth pass's cache (its cap-6 subset) where one exists, else ``build``'s."""
    six = cache / f"six{persons // 1000}k_s{seed}.pkl" if cache else None
    if six and six.is_file():
        c6 = sixth_build(persons, seed, cache)
        keep = c6["k"] <= CONFIG["max_rescores"]
        return {"points": c6["pts"][keep].reset_index(drop=True), "y": c6["y"][keep],
                "X": c6["X"][keep].reset_index(drop=True), "start": c6["start"], "end": c6["end"],
                "views": c6["views"], "source": six.stem}
    # build's points are every example point, its X the labelled ones' only (as fit_examples):
    # whatever adds columns to X must key them on X's own (dispute_id, as_of).
    return {**build(persons, seed, cache)[0], "source": f"c{persons // 1000}k_s{seed}" if cache else None}


def seventh(persons: int, seed: int, cache: Path | None, n_boot: int) -> dict:
    """The search given each set of ``PARAM_GRID`` and its twin at :data:`SLOW_LR` (eight sets,
    judged by the rolling-origin windows only), against the default (the first four: the same
    rows of the same search). The default's model is refitted with its chosen set alone (the
    same search row, so the same trees, blend and calibration); the held-out views of both,
    and the paired change between them, are printed and choose nothing."""
    from escalation_risk.model.training import PARAM_GRID
    c = _examples(persons, seed, cache)
    grid = PARAM_GRID + [{**g, "learning_rate": SLOW_LR} for g in PARAM_GRID]
    t0 = time.process_time()
    mx = fit(c, {"param_grid": grid})
    cpu_search = time.process_time() - t0
    trx = mx.manifest["training"]
    search = [{kk: r[kk] for kk in ("params", "n_trees", "window_log_loss", "fold_best_iterations", "fold_rounds",
                                    "max_rounds")} for r in trx["search"]]
    plain = int(np.argmin([r["window_log_loss"] for r in search[:len(PARAM_GRID)]]))
    slow = len(PARAM_GRID) + int(np.argmin([r["window_log_loss"] for r in search[len(PARAM_GRID):]]))
    chosen = int(trx["chosen"])
    md = mx if chosen == plain else fit(c, {"param_grid": [PARAM_GRID[plain]]})
    if md is not mx:
        assert md.manifest["training"]["best_iteration"] == search[plain]["n_trees"]
    out: dict = {"persons": persons, "seed": seed, "search": search, "default_set": plain, "best_slow_set": slow,
                 "chosen": chosen, "slow_chosen": chosen >= len(PARAM_GRID),
                 "slow_minus_default": search[slow]["window_log_loss"] - search[plain]["window_log_loss"],
                 "cap_ended": [i for i, r in enumerate(search) if r["max_rounds"] in r["fold_rounds"]],
                 "cpu_search_s": cpu_search, "models": {}}
    scores: dict = {}
    for name, m in (("default", md), ("slow_grid", mx)):
        tr_ = m.manifest["training"]
        out["models"][name] = {"set": tr_["search"][tr_["chosen"]]["params"], "trees": tr_["best_iteration"],
                               "linear": m.manifest.get("linear_choice")}
        scores[name] = {}
        for view in ("report", "nights"):
            v = c["views"][view]
            p, lr = m.predict_proba(v["X"]), baseline_scores(v["X"], m.baselines)["logistic_regression"][0]
            scores[name][view] = p
            out["models"][name][view] = targets(v["y"], p, lr, v["pts"]["dispute_id"].to_numpy(dtype=object),
                                                n_boot, seed)
            print(f"{persons:,} people, seed {seed}, {name}, {view}: {fmt(out['models'][name][view])}", flush=True)
    out["paired_vs_default"] = paired({"views": c["views"]}, {"scores": scores["slow_grid"]},
                                      {"scores": scores["default"]}, n_boot, seed)
    rows = [(r["params"], r["n_trees"], round(r["window_log_loss"], 5), r["fold_rounds"], r["max_rounds"])
            for r in search]
    print(f"search (set, trees, windows' log-loss, fold rounds / cap): {rows}\n"
          f"default set {plain}, best slow set {slow} ({out['slow_minus_default']:+.5f}), chosen {chosen}; "
          f"paired slow grid - default: {out['paired_vs_default']}", flush=True)
    return out


SEPARATION = ("sep_pair_days_apart", "sep_moved_out_days")
SEP_VERSION = 2  # the definition after the review (living together now, moving with the household): not 1's caches


def separation_columns(persons: int, seed: int, c: dict, cache: Path | None) -> dict:
    """The separation family's columns for the rows of ``c``'s training features (on the data
    known at the cutoff) and of its held-out views' (on the whole district), computed at each
    row's own (dispute_id, as_of), from the regenerated district. Kept in ``cache`` as
    ``sep{SEP_VERSION}_{source}.pkl``, named after the examples they belong to (``c["source"]``),
    with the keys they were computed at, checked on reading."""
    from escalation_risk.features import history_index, points_from_history, separation
    src = c.get("source")
    path = cache / f"sep{SEP_VERSION}_{src}.pkl" if cache and src else None

    def keys(X: pd.DataFrame) -> pd.DataFrame:
        return X[["dispute_id", "as_of"]].reset_index(drop=True)
    want = {"train": keys(c["X"]), "views": {v: keys(c["views"][v]["X"]) for v in c["views"]}}
    if path and path.is_file():
        got = pickle.loads(path.read_bytes())
        pd.testing.assert_frame_equal(got["keys"]["train"], want["train"])
        for v in c["views"]:
            pd.testing.assert_frame_equal(got["keys"]["views"][v], want["views"][v])
        return got
    ds, known = district(persons, seed)

    def cols(d, pts: pd.DataFrame) -> pd.DataFrame:
        idx = history_index(d)
        got = separation.compute(idx, points_from_history(idx, pts))
        return pd.DataFrame({n: np.asarray(got[n], dtype=float) for n in SEPARATION})
    out = {"train": cols(known, want["train"]), "views": {v: cols(ds, want["views"][v]) for v in c["views"]},
           "keys": want}
    if path:
        path.write_bytes(pickle.dumps(out))
    return out


def seventh_feature(persons: int, seed: int, cache: Path | None, n_boot: int) -> dict:
    """The separation family added to the default's features (trees and regression alike), the
    default's chosen set refitted with and without it (``bagged``, k=1), judged by the search's
    rolling-origin windows only; both held-out views and the paired change printed beside."""
    c = _examples(persons, seed, cache)
    sep = separation_columns(persons, seed, c, cache)

    def plus(X: pd.DataFrame, cols: pd.DataFrame) -> pd.DataFrame:
        # Features built after the family was registered have its columns already (build's,
        # without the sixth pass's cache): this definition's replace them.
        return pd.concat([X.drop(columns=list(SEPARATION), errors="ignore").reset_index(drop=True), cols], axis=1)
    c = {**c, "X": plus(c["X"], sep["train"]),
         "views": {v: {**c["views"][v], "X": plus(c["views"][v]["X"], sep["views"][v])} for v in c["views"]}}
    m = fit(c)
    s = {**_setup(m, c), "F": c["X"]}
    out: dict = {"persons": persons, "seed": seed,
                 "coverage": {n: float(sep["train"][n].notna().mean()) for n in SEPARATION},
                 "coverage_365d": {n: float((sep["train"][n] <= 365).mean()) for n in SEPARATION}}
    print(f"{persons:,} people, seed {seed}: separation known on {out['coverage']}, within a year on "
          f"{out['coverage_365d']}", flush=True)
    base = bagged(m, c, s, k=1, name="default [search windows]", n_boot=n_boot, seed=seed)
    withf = bagged(m, c, s, k=1, name="with separation [search windows]", n_boot=n_boot, seed=seed, add=SEPARATION)
    out["base"] = {kk: vv for kk, vv in base.items() if kk != "scores"}
    out["with"] = {kk: vv for kk, vv in withf.items() if kk != "scores"}
    out["chosen"] = withf["window_log_loss"] < base["window_log_loss"]
    out["paired"] = paired(c, withf, base, n_boot, seed)
    print(f"separation: windows' log-loss {base['window_log_loss']:.5f} -> {withf['window_log_loss']:.5f} "
          f"(chosen: {out['chosen']}); paired with - without: {out['paired']}", flush=True)
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
    ap.add_argument("--sixth", nargs="*", default=None, choices=["disagree", "cap", "activity", "extra"],
                    help="issue 29's sixth pass (these parts; none named: all)")
    ap.add_argument("--extra-grid", action="store_true",
                    help="also search PARAM_GRID with each set's extra-trees twin (the search chooses)")
    ap.add_argument("--seventh", action="store_true",
                    help="issue 29's seventh pass: PARAM_GRID with each set's twin at SLOW_LR (the search chooses)")
    ap.add_argument("--separation", action="store_true",
                    help="issue 29's seventh pass: the separation family added, judged by the search's windows")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    cache = Path(args.cache) if args.cache else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    runs: list[dict] = []

    def each_seed(run) -> None:
        """``run(seed)`` for each seed, its cost added, the runs written after each."""
        for seed in args.seeds:
            t0, c0 = time.perf_counter(), time.process_time()
            r = run(seed)
            r["cost"] = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                         **r.get("cost", {}),  # a run's own figures (the default's build CPU)
                         "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                         "load_avg": os.getloadavg()}
            print(f"seed {seed}: {r['cost']}", flush=True)
            runs.append(r)
            if args.out:
                Path(args.out).write_text(json.dumps(runs, default=float, indent=1))

    if args.seventh or args.separation:
        each_seed(lambda seed: (seventh if args.seventh else seventh_feature)(args.persons, seed, cache, args.n_boot))
        return
    if args.sixth is not None:
        parts = set(args.sixth or ["disagree", "cap", "activity", "extra"])
        each_seed(lambda seed: sixth(args.persons, seed, cache, args.n_boot, parts))
        return

    def one(seed: int) -> dict:
        """The targets in both views, then what the flags ask for, for one seed."""
        c0 = time.process_time()
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
        if args.extra_grid:
            from escalation_risk.model.training import PARAM_GRID
            mx = fit(c, {"param_grid": PARAM_GRID + [{**g, "extra_trees": True} for g in PARAM_GRID]})
            trx = mx.manifest["training"]
            run["extra_grid"] = {"chosen": trx["chosen"], "set": trx["search"][trx["chosen"]]["params"],
                                 "trees": trx["best_iteration"], "views": {},
                                 "search": [{kk: r[kk] for kk in ("params", "n_trees", "window_log_loss")}
                                            for r in trx["search"]]}
            for view in ("report", "nights"):
                v = c["views"][view]
                p, lr = mx.predict_proba(v["X"]), baseline_scores(v["X"], mx.baselines)["logistic_regression"][0]
                run["extra_grid"]["views"][view] = targets(v["y"], p, lr, v["pts"]["dispute_id"].to_numpy(dtype=object),
                                                           args.n_boot, seed)
                print(f"extra-trees grid, {view}: {fmt(run['extra_grid']['views'][view])}", flush=True)
            print(f"extra-trees grid chose {run['extra_grid']['set']} ({run['extra_grid']['trees']} trees): "
                  f"{[(r['params'], r['n_trees'], round(r['window_log_loss'], 5)) for r in trx['search']]}", flush=True)
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
        elif not (args.spread or args.drop or args.extra_grid):
            run["disagreements"] = disagreements(m, c)
        if not args.no_remedies:
            run["remedies"] = remedies(m, c, args.n_boot, seed)
        run["cost"] = {"build_cpu_s": c_build}
        return run

    each_seed(one)


if __name__ == "__main__":
    main()
