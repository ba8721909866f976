"""Train, validate over time, calibrate and explain the escalation-risk model.

The design, in the order :func:`train` runs it:

1. **Only the past.** The data are cut at ``cutoff`` (:meth:`Dataset.cut`): a
   crime that happened before the cutoff but was reported after it is unknown,
   as it would have been on the day.
2. **Examples.** Each dispute at its report time (``as_of = reported_at``); with
   ``config["rescore_every_days"]`` also re-scored every so many days while still
   open, as the nightly job sees it. Only examples whose label is fully observed
   are used (``as_of + horizon <= cutoff``).
3. **Temporal split.** The last ``validation_months`` of fully-labelled ``as_of``
   form the validation window; training examples end one horizon before it, so no
   training label window overlaps a validation one.
4. **LightGBM** on the registry's features with native categoricals, conservative
   settings, early stopping on the validation window, deterministic threads and
   seed. No class re-weighting: the booster's raw scores are log-odds of the real
   base rate.
5. **Calibration** on the validation window: Platt scaling or isotonic regression,
   whichever has the lower Brier score in 5-fold cross-validation there. Both are
   stored as plain numbers.
6. **Baselines and metrics** on the validation window: the model against a
   logistic regression on the same features and a DASH/ODARA-style checklist;
   ROC AUC, average precision, Brier, expected calibration error, precision and
   recall at alert budgets, per-group metrics (fairlearn ``MetricFrame``).
7. **Thresholds** for the alert levels from the validation window's
   probabilities (:func:`response.choose_thresholds`).

:class:`RiskModel` holds the booster, the calibration map, the baselines and the
manifest; it scores, explains, evaluates and saves itself (no pickle, see
:mod:`.artifacts`).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import logging
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from .._version import __version__
from ..artifacts import jsonable
from ..dataset import Dataset
from ..explain import global_importance
from ..features import CATEGORICAL, FEATURE_NAMES, REGISTRY, build_features
from ..known import time_varying_facts
from ..labels import DEFAULT_HORIZON_DAYS, data_end, make_labels
from ..response import DEFAULT_BUDGET, choose_thresholds
from .baselines import _fit_checklist, _fit_logistic
from .calibration import apply_calibrator, fit_calibrator
from .metrics import DEFAULT_BUDGETS, _evaluate_arrays
from .points import example_points
from .risk_model import RiskModel

log = logging.getLogger(__name__)

# Conservative settings: the model must hold on districts unlike the one it was
# tuned on, so small trees, large leaves, subsampling and L2 over a tuned fit. On four
# generated 20k districts, 7 leaves / 100 per leaf / L2 10 ranked as well as 15 or 31
# leaves (mean AUC equal, precision at 5% +0.01) with less room to overfit.
LGB_PARAMS: dict[str, Any] = {
    "objective": "binary", "metric": "binary_logloss", "learning_rate": 0.03, "num_leaves": 7,
    "min_data_in_leaf": 100, "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1,
    "lambda_l2": 10.0, "min_sum_hessian_in_leaf": 1.0, "cat_smooth": 20.0, "cat_l2": 10.0,
    "min_data_per_group": 50, "max_bin": 255, "verbosity": -1,
}

DEFAULT_CONFIG: dict[str, Any] = {
    "rescore_every_days": None,     # also re-score open disputes every N days (None: report time only)
    "max_rescores": 12,             # at most this many later moments per dispute
    "validation_months": 6,         # fully-labelled as_of months held out for early stopping and calibration
    "burn_in_days": 0,              # skip examples this close to the start of the data (short histories)
    "recency_half_life_days": None,  # weight training examples down with age (None: equal weights)
    "num_boost_round": 600,
    "early_stopping_rounds": 50,
    "num_threads": 2,
    "lgb_params": {},               # overrides of LGB_PARAMS
    "calibration": "auto",          # "auto" (lower CV Brier), "platt" or "isotonic"
    "calibration_folds": 5,
    "budget": dict(DEFAULT_BUDGET),  # cumulative share of disputes at or above each level
    "offences": None,               # label: offence categories counted (None = all)
    "shared_party": True,           # label: a shared person party suffices
    "ece_bins": 10,
}


def _config(config: dict | None) -> dict:
    cfg = {**DEFAULT_CONFIG, **(config or {})}
    unknown = set(config or {}) - set(DEFAULT_CONFIG)
    if unknown:
        raise ValueError(f"config: unknown option(s) {sorted(unknown)}; known: {sorted(DEFAULT_CONFIG)}")
    return cfg



def _split(points: pd.DataFrame, *, cutoff: pd.Timestamp, start: pd.Timestamp, horizon: pd.Timedelta,
           validation_months: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Masks of training and validation examples and the periods they cover."""
    as_of = points["as_of"]
    labelled_end = cutoff - horizon                  # as_of + horizon <= cutoff
    val_start = labelled_end - pd.DateOffset(months=validation_months)
    train_end = val_start - horizon                  # a gap of one horizon: no label window overlaps
    if train_end <= start:
        raise ValueError(f"cutoff {cutoff.date()} leaves no training period: the data start {start.date()}, "
                         f"validation needs {validation_months} months and two horizons of "
                         f"{horizon.days} days")
    train = ((as_of >= start) & (as_of + horizon <= val_start)).to_numpy()
    val = ((as_of >= val_start) & (as_of <= labelled_end)).to_numpy()
    periods = {"train_as_of": [start, train_end], "validation_as_of": [val_start, labelled_end],
               "labels_observed_until": cutoff}
    return train, val, periods


def train(ds: Dataset, *, cutoff, horizon_days: int = DEFAULT_HORIZON_DAYS, seed: int = 0,
          config: dict | None = None, outcomes: pd.DataFrame | None = None) -> RiskModel:
    """Train, calibrate and validate a model on the data known at ``cutoff``.

    See the module docstring for the design; ``config`` overrides
    :data:`DEFAULT_CONFIG`. ``outcomes`` (``AlertStore.outcomes()``) feeds the recorded
    outcomes of handled alerts back into the labels (those closed by the cutoff).
    Deterministic for a given dataset, cutoff, seed and ``num_threads``.
    """
    cfg = _config(config)
    cutoff = pd.Timestamp(cutoff)
    horizon = pd.Timedelta(days=horizon_days)
    full_fingerprint = ds.fingerprint()
    known = ds.cut(cutoff) if data_end(ds) > cutoff else ds
    start = pd.Timestamp(known.incidents["reported_at"].min()) + pd.Timedelta(days=cfg["burn_in_days"])

    points = example_points(known, every_days=cfg["rescore_every_days"], max_rescores=cfg["max_rescores"],
                            until=cutoff)
    tr, va, periods = _split(points, cutoff=cutoff, start=start, horizon=horizon,
                             validation_months=cfg["validation_months"])
    points = points[tr | va].reset_index(drop=True)
    is_val = va[tr | va]
    if outcomes is not None and len(outcomes):
        outcomes = outcomes[pd.to_datetime(outcomes["closed_at"]) <= cutoff]
    y = make_labels(known, points, horizon_days=horizon_days, offences=cfg["offences"],
                    shared_party=cfg["shared_party"], outcomes=outcomes).to_numpy()
    ok = ~np.isnan(y)  # the cut data end a little before the cutoff: drop what they cannot label
    points, y, is_val = points[ok].reset_index(drop=True), y[ok].astype(int), is_val[ok]
    if len(np.unique(y[~is_val])) < 2 or len(np.unique(y[is_val])) < 2:
        raise ValueError(f"training ({int((~is_val).sum())} examples) and validation ({int(is_val.sum())}) "
                         f"both need escalated and non-escalated disputes; choose a later cutoff")
    X = build_features(known, points)
    F = X[FEATURE_NAMES]
    Xtr, Xva, ytr, yva = F[~is_val], F[is_val], y[~is_val], y[is_val]
    log.info("training on %d examples (%d escalated), validating on %d (%d escalated)",
             len(ytr), ytr.sum(), len(yva), yva.sum())

    params = {**LGB_PARAMS, **cfg["lgb_params"], "seed": seed, "deterministic": True,
              "num_threads": cfg["num_threads"], "force_col_wise": True}
    weight = None
    if cfg["recency_half_life_days"]:
        age = (points["as_of"][~is_val].max() - points["as_of"][~is_val]).dt.days.to_numpy(dtype=float)
        weight = 0.5 ** (age / cfg["recency_half_life_days"])
    dtr = lgb.Dataset(Xtr, ytr, weight=weight, categorical_feature=CATEGORICAL, free_raw_data=False)
    dva = lgb.Dataset(Xva, yva, reference=dtr, categorical_feature=CATEGORICAL, free_raw_data=False)
    booster = lgb.train(params, dtr, num_boost_round=cfg["num_boost_round"], valid_sets=[dva],
                        valid_names=["validation"],
                        callbacks=[lgb.early_stopping(cfg["early_stopping_rounds"], verbose=False)])
    # Keep only the trees early stopping chose, so the saved model is the validated one.
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))

    raw_va = np.asarray(booster.predict(Xva, raw_score=True))
    calibrator = fit_calibrator(raw_va, yva, method=cfg["calibration"], folds=cfg["calibration_folds"], seed=seed)
    p_va = apply_calibrator(raw_va, calibrator)
    thresholds = choose_thresholds(p_va, cfg["budget"])

    baselines = {"logistic_regression": _fit_logistic(Xtr, ytr, seed), "checklist": _fit_checklist(Xtr, ytr)}
    ev = _evaluate_arrays(yva, Xva, p_va, baselines, thresholds["orange"], DEFAULT_BUDGETS, cfg["ece_bins"],
                          {"what": "validation window", "start": periods["validation_as_of"][0],
                           "end": periods["validation_as_of"][1]})
    contrib = np.asarray(booster.predict(Xva, pred_contrib=True))
    importance = global_importance(pd.DataFrame(contrib, columns=FEATURE_NAMES + ["bias"]))

    booster_text = booster.model_to_string()
    version = f"{cutoff:%Y%m%d}-s{seed}-{hashlib.sha256(booster_text.encode()).hexdigest()[:10]}"
    manifest = jsonable({
        "model_version": version,
        "library_version": __version__,
        "lightgbm_version": lgb.__version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "cutoff": cutoff, "seed": seed,
        "labels": {"horizon_days": horizon_days, "offences": cfg["offences"], "shared_party": cfg["shared_party"]},
        "features": {"names": FEATURE_NAMES,
                     "dtypes": {n: ("category" if n in CATEGORICAL else "float64") for n in FEATURE_NAMES},
                     "categories": {c: list(REGISTRY[c].categories or ()) for c in CATEGORICAL}},
        "training_data": {"fingerprint": full_fingerprint, "fingerprint_at_cutoff": known.fingerprint(),
                          "time_varying_facts": time_varying_facts(ds.tables()),
                          "source": ds.source},
        "training": {"config": cfg, "lightgbm_params": params, "best_iteration": booster.current_iteration(),
                     "periods": periods, "n_train": len(ytr), "positives_train": int(ytr.sum()),
                     "n_validation": len(yva), "positives_validation": int(yva.sum())},
        "calibration": {"method": calibrator["method"], "cv": calibrator["cv"]},
        "budget": cfg["budget"], "thresholds": thresholds,
        "metrics": {"validation": ev.to_dict()},
        "importance": importance.head(20)[["feature", "mean_abs_shap"]].to_dict(orient="records"),
    })
    return RiskModel(lgb.Booster(model_str=booster_text), calibrator, manifest, baselines)
