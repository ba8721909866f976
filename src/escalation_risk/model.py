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
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from ._version import __version__
from .artifacts import ModelLoadError, read_model_dir, write_model_dir
from .dataset import Dataset
from .explain import global_importance, top_reasons
from .features import CATEGORICAL, FEATURE_NAMES, REGISTRY, build_features
from .labels import DEFAULT_HORIZON_DAYS, data_end, make_labels
from .response import ALERT_LEVELS, DEFAULT_BUDGET, assign_levels, choose_plans, choose_thresholds, compute_trend

log = logging.getLogger(__name__)

SCORERS = ("model", "logistic_regression", "checklist")
DEFAULT_BUDGETS = (0.01, 0.05, 0.10)

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

# A DASH/ODARA-style checklist: each item is yes when any of its alternatives holds,
# an alternative holds when all its (feature, minimum) conditions hold.
CHECKLIST_ITEMS: list[dict] = [
    {"item": "prior_police_calls", "any_of": [[["hist_police_call_365d_max", 1]], [["followup_police_calls", 1]],
                                              [["pair_police_calls_30d", 1]]]},
    {"item": "prior_violence_or_crime", "any_of": [[["hist_violent_suspect_all_max", 1]],
                                                   [["hist_crime_suspect_all_max", 1]], [["flag_prior_violence", 1]]]},
    {"item": "threats", "any_of": [[["text_threat", 1]], [["followup_text_threat", 1]], [["text_revenge", 1]],
                                   [["followup_text_revenge", 1]]]},
    {"item": "weapon", "any_of": [[["text_weapon", 1]], [["followup_text_weapon", 1]]]},
    {"item": "violence_described", "any_of": [[["text_violence", 1]], [["followup_text_violence", 1]]]},
    {"item": "failed_mediation", "any_of": [[["mediations_failed", 1]], [["hist_failed_mediation_365d_max", 1]]]},
    {"item": "concerns_on_record", "any_of": [[["flag_mental_health", 1]], [["flag_substance", 1]],
                                              [["flag_community_correction", 1]]]},
    {"item": "follow_up_reports", "any_of": [[["followups", 1]]]},
    {"item": "cohabiting_intimate_partners", "any_of": [[["pair_intimate", 1], ["pair_cohabit", 1]]]},
    {"item": "repeat_conflict_between_parties", "any_of": [[["pair_prior_conflicts", 1]]]},
]

# Counts are heavy-tailed and grow as a district's history lengthens; without the log
# and the clip one unusual month swings a linear model far out of range, which would
# make it a straw man rather than a baseline.
LR_OPTS: dict = {"log1p": True, "clip": 5.0}

GROUP_ATTRIBUTES = ("gender", "age_band", "hukou", "dispute_category")


def _config(config: dict | None) -> dict:
    cfg = {**DEFAULT_CONFIG, **(config or {})}
    unknown = set(config or {}) - set(DEFAULT_CONFIG)
    if unknown:
        raise ValueError(f"config: unknown option(s) {sorted(unknown)}; known: {sorted(DEFAULT_CONFIG)}")
    return cfg


def _jsonable(obj):
    """Plain JSON values: NaN becomes None, numpy scalars become Python ones."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, (pd.Timestamp, _dt.datetime, _dt.date)):
        return pd.Timestamp(obj).isoformat()
    return obj


# --------------------------------------------------------------------------- points

def report_points(ds: Dataset, start=None, end=None) -> pd.DataFrame:
    """Every dispute at its report time, for disputes reported in ``[start, end)``."""
    inc = ds.incidents
    d = inc[inc["kind"] == "dispute"]
    keep = np.ones(len(d), dtype=bool)
    if start is not None:
        keep &= (d["reported_at"] >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        keep &= (d["reported_at"] < pd.Timestamp(end)).to_numpy()
    d = d[keep]
    return pd.DataFrame({"dispute_id": d["incident_id"].to_numpy(dtype=object),
                         "as_of": d["reported_at"].to_numpy(dtype="datetime64[ns]")})


def open_points(ds: Dataset, when) -> pd.DataFrame:
    """Every dispute open at ``when``: reported by then and not closed by then."""
    t = pd.Timestamp(when)
    inc = ds.incidents
    m = (inc["kind"] == "dispute") & (inc["reported_at"] <= t) & (inc["closed_at"].isna() | (inc["closed_at"] > t))
    d = inc[m]
    return pd.DataFrame({"dispute_id": d["incident_id"].to_numpy(dtype=object),
                         "as_of": np.full(len(d), t.to_datetime64()).astype("datetime64[ns]")})


def night_points(ds: Dataset, *, start, end=None, day: int = 10, horizon_days: int = DEFAULT_HORIZON_DAYS
                 ) -> pd.DataFrame:
    """Every dispute open on day ``day`` of each month in [start, end], as the nightly job
    would score it; ``end`` defaults to the last night whose horizon is inside the data."""
    start = pd.Timestamp(start)
    end = pd.Timestamp(end) if end is not None else data_end(ds) - pd.Timedelta(days=horizon_days)
    first = (start - pd.Timedelta(days=day - 1)).to_period("M").to_timestamp() + pd.Timedelta(days=day - 1)
    nights = [n for n in pd.date_range(first, end, freq="MS") + pd.Timedelta(days=day - 1) if start <= n <= end]
    if not nights:
        raise ValueError(f"no night between {start:%Y-%m-%d} and {end:%Y-%m-%d}")
    return pd.concat([open_points(ds, n) for n in nights], ignore_index=True)


def example_points(ds: Dataset, *, every_days: int | None, max_rescores: int, until) -> pd.DataFrame:
    """Training examples: disputes at report time, plus later moments while still open."""
    base = report_points(ds)
    if not every_days:
        return base
    inc = ds.incidents.set_index("incident_id")
    closed = inc.loc[base["dispute_id"], "closed_at"].to_numpy(dtype="datetime64[ns]")
    k = np.arange(max_rescores + 1)
    rep = np.repeat(base["as_of"].to_numpy(dtype="datetime64[ns]"), len(k))
    ids = np.repeat(base["dispute_id"].to_numpy(dtype=object), len(k))
    cl = np.repeat(closed, len(k))
    as_of = rep + np.tile(k, len(base)) * np.timedelta64(every_days, "D")
    keep = (np.isnat(cl) | (as_of < cl)) & (as_of <= np.datetime64(pd.Timestamp(until)))
    keep |= np.tile(k == 0, len(base))
    return pd.DataFrame({"dispute_id": ids[keep], "as_of": as_of[keep]}).reset_index(drop=True)


# --------------------------------------------------------------------------- calibration

def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def apply_calibrator(raw: np.ndarray, cal: dict) -> np.ndarray:
    """Calibrated probabilities from raw log-odds with a stored calibration map."""
    raw = np.asarray(raw, dtype=float)
    if cal["method"] == "platt":
        p = _sigmoid(cal["a"] * raw + cal["b"])
    elif cal["method"] == "isotonic":
        # A vanishing increasing term keeps the booster's order inside an isotonic
        # step, so tied probabilities do not make alert budgets fill unevenly.
        p = np.interp(raw, cal["x"], cal["y"]) + cal.get("tie_break", 0.0) * _sigmoid(raw)
    elif cal["method"] == "identity":
        p = _sigmoid(raw)
    else:
        raise ValueError(f"unknown calibration method {cal['method']!r}")
    lo, hi = cal.get("clip", (1e-4, 1 - 1e-4))
    return np.clip(p, lo, hi)


def _fit_platt(raw: np.ndarray, y: np.ndarray) -> dict:
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(raw.reshape(-1, 1), y)
    return {"method": "platt", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}


def _fit_isotonic(raw: np.ndarray, y: np.ndarray) -> dict:
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
    return {"method": "isotonic", "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist(),
            "tie_break": 1e-6}


_FITTERS = {"platt": _fit_platt, "isotonic": _fit_isotonic}


def fit_calibrator(raw: np.ndarray, y: np.ndarray, *, method: str = "auto", folds: int = 5, seed: int = 0) -> dict:
    """Platt or isotonic on (raw score, label); ``auto`` picks the lower cross-validated Brier."""
    raw = np.asarray(raw, dtype=float)
    y = np.asarray(y, dtype=int)
    if y.min() == y.max():
        raise ValueError("calibration needs both outcomes in the validation window; widen it")
    cv: dict[str, dict] = {}
    n_splits = int(min(folds, np.bincount(y).min()))
    if n_splits >= 2:
        skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        for name, fit in _FITTERS.items():
            p = np.empty(len(y))
            for tr, te in skf.split(raw, y):
                p[te] = apply_calibrator(raw[te], fit(raw[tr], y[tr]))
            cv[name] = {"brier": float(brier_score_loss(y, p)), "log_loss": float(log_loss(y, p, labels=[0, 1]))}
    if method == "auto":
        # Ties go to Platt: two parameters, smoother, safer on small windows.
        method = "platt" if not cv or cv["platt"]["brier"] <= cv["isotonic"]["brier"] else "isotonic"
    if method not in _FITTERS:
        raise ValueError(f"calibration must be 'auto', 'platt' or 'isotonic', got {method!r}")
    cal = _FITTERS[method](raw, y)
    cal["cv"] = cv
    cal["n"] = int(len(y))
    return cal


# --------------------------------------------------------------------------- baselines

def checklist_items(X: pd.DataFrame, items: list[dict] = CHECKLIST_ITEMS) -> pd.DataFrame:
    """Yes (1) / no (0) per checklist item and row; a missing feature value counts as no."""
    out = {}
    for it in items:
        yes = np.zeros(len(X), dtype=bool)
        for alt in it["any_of"]:
            ok = np.ones(len(X), dtype=bool)
            for feat, minimum in alt:
                ok &= (X[feat].to_numpy(dtype=float) >= minimum)  # NaN >= m is False
            yes |= ok
        out[it["item"]] = yes.astype(int)
    return pd.DataFrame(out, index=X.index)


def checklist_score(X: pd.DataFrame, items: list[dict] = CHECKLIST_ITEMS) -> np.ndarray:
    """Number of yes-answers on the checklist."""
    return checklist_items(X, items).sum(axis=1).to_numpy(dtype=float)


def _fit_checklist(X: pd.DataFrame, y: np.ndarray) -> dict:
    """The checklist and, for Brier and calibration, the observed rate at each score
    (shrunk to the base rate with 10 pseudo-observations, so rare scores stay sane)."""
    s = checklist_score(X).astype(int)
    base = float(y.mean())
    n_items = len(CHECKLIST_ITEMS)
    cnt = np.bincount(s, minlength=n_items + 1)[: n_items + 1]
    pos = np.bincount(s, weights=y, minlength=n_items + 1)[: n_items + 1]
    rate = (pos + 10 * base) / (cnt + 10)
    return {"items": CHECKLIST_ITEMS, "rate_by_score": rate.tolist()}


def _checklist_proba(X: pd.DataFrame, spec: dict) -> tuple[np.ndarray, np.ndarray]:
    s = checklist_score(X, spec["items"])
    rate = np.asarray(spec["rate_by_score"])
    return s, rate[np.clip(s.astype(int), 0, len(rate) - 1)]


def _design(X: pd.DataFrame, spec: dict) -> np.ndarray:
    """The logistic regression's matrix: median-imputed standardised numbers, one-hot categories."""
    num = X[spec["numeric"]].to_numpy(dtype=float)
    med = np.asarray(spec["median"])
    num = np.where(np.isnan(num), med, num)
    if spec.get("log1p"):
        num = np.sign(num) * np.log1p(np.abs(num))
    num = (num - np.asarray(spec["mean"])) / np.asarray(spec["scale"])
    if spec.get("clip"):
        num = np.clip(num, -spec["clip"], spec["clip"])
    parts = [num]
    for col, cats in spec["categories"].items():
        v = X[col].astype(object).to_numpy()
        parts.append((v[:, None] == np.asarray(cats, dtype=object)[None, :]).astype(float))
    return np.hstack(parts)


def _fit_logistic(X: pd.DataFrame, y: np.ndarray, seed: int) -> dict:
    numeric = [c for c in FEATURE_NAMES if c not in CATEGORICAL]
    num = X[numeric].to_numpy(dtype=float)
    with warnings.catch_warnings():  # a feature never observed in training has no median: 0 below
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(num, axis=0)
    med = np.where(np.isnan(med), 0.0, med)
    filled = np.where(np.isnan(num), med, num)
    if LR_OPTS.get("log1p"):
        filled = np.sign(filled) * np.log1p(np.abs(filled))
    mean, scale = filled.mean(axis=0), filled.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    spec = {"numeric": numeric, "median": med.tolist(), "mean": mean.tolist(), "scale": scale.tolist(),
            "categories": {c: list(REGISTRY[c].categories) for c in CATEGORICAL}, **LR_OPTS}
    lr = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(_design(X, spec), y)
    spec["coef"] = lr.coef_[0].tolist()
    spec["intercept"] = float(lr.intercept_[0])
    return spec


def _logistic_proba(X: pd.DataFrame, spec: dict) -> np.ndarray:
    z = _design(X, spec) @ np.asarray(spec["coef"]) + spec["intercept"]
    return _sigmoid(z)


# --------------------------------------------------------------------------- metrics

def _at_budget(y: np.ndarray, score: np.ndarray, budget: float) -> tuple[float, float]:
    """(precision, recall) among the top ``budget`` share by score; ties at the edge
    count at their average rate (the expectation under a random tie-break)."""
    n = len(y)
    k = max(1, int(math.ceil(budget * n)))
    t = np.sort(score)[::-1][k - 1]
    above = score > t
    tied = score == t
    hits = y[above].sum() + (k - above.sum()) * y[tied].mean()
    pos = y.sum()
    return float(hits / k), float(hits / pos) if pos else float("nan")


def _bins(p: np.ndarray, bins: int) -> list[np.ndarray]:
    order = np.argsort(p, kind="stable")
    return [b for b in np.array_split(order, bins) if len(b)]


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Share-weighted mean |predicted - observed| over equal-count (quantile) bins."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    return float(sum(len(b) / len(y) * abs(p[b].mean() - y[b].mean()) for b in _bins(p, bins)))


def calibration_curve(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed rate per quantile bin."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    return pd.DataFrame([{"bin": i, "mean_predicted": p[b].mean(), "observed": y[b].mean(), "count": len(b)}
                         for i, b in enumerate(_bins(p, bins))])


def _safe_auc(y, p) -> float:
    y = np.asarray(y)
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def _safe_ap(y, p) -> float:
    y = np.asarray(y)
    return float(average_precision_score(y, p)) if y.sum() > 0 else float("nan")


def score_metrics(y: np.ndarray, proba: np.ndarray, rank: np.ndarray | None = None, *,
                  budgets=DEFAULT_BUDGETS, bins: int = 10) -> dict:
    """Ranking metrics on ``rank`` (default: the probabilities), calibration on ``proba``."""
    y = np.asarray(y, dtype=float)
    proba = np.asarray(proba, dtype=float)
    rank = proba if rank is None else np.asarray(rank, dtype=float)
    out = {"n": int(len(y)), "positives": int(y.sum()), "base_rate": float(y.mean()),
           "mean_predicted": float(proba.mean()), "roc_auc": _safe_auc(y, rank),
           "average_precision": _safe_ap(y, rank), "brier": float(brier_score_loss(y, proba)),
           "log_loss": float(log_loss(y, np.clip(proba, 1e-6, 1 - 1e-6), labels=[0, 1])),
           "ece": expected_calibration_error(y, proba, bins)}
    for b in budgets:
        prec, rec = _at_budget(y, rank, b)
        out[f"precision@{b:.0%}"] = prec
        out[f"recall@{b:.0%}"] = rec
    return out


def group_attributes(X: pd.DataFrame) -> pd.DataFrame:
    """Groups of each dispute for fairness checks, from its features (no personal data)."""
    male, female = X["n_male"].to_numpy(float), X["n_female"].to_numpy(float)
    gender = np.where((male > 0) & (female > 0), "mixed", np.where(male > 0, "male only",
                      np.where(female > 0, "female only", "unknown")))
    age = X["age_min"].to_numpy(float)
    band = np.select([np.isnan(age), age < 25, age < 45, age < 65],
                     ["unknown", "youngest <25", "youngest 25-44", "youngest 45-64"], "youngest 65+")
    migrant = X["n_migrant"].to_numpy(float)
    hukou = np.where(migrant > 0, "a migrant party", "local parties only")
    cat = X["category"].astype(object).fillna("unknown").to_numpy()
    return pd.DataFrame({"gender": gender, "age_band": band, "hukou": hukou, "dispute_category": cat},
                        index=X.index)


def _group_metrics(alert_threshold: float) -> dict:
    def alert_rate(y, p):
        return float(np.mean(np.asarray(p) >= alert_threshold))

    def alert_precision(y, p):
        a = np.asarray(p) >= alert_threshold
        return float(np.asarray(y)[a].mean()) if a.any() else float("nan")

    def alert_recall(y, p):
        y = np.asarray(y)
        return float((np.asarray(p)[y == 1] >= alert_threshold).mean()) if y.sum() else float("nan")

    return {"count": lambda y, p: int(len(y)), "observed_rate": lambda y, p: float(np.mean(y)),
            "mean_predicted": lambda y, p: float(np.mean(p)), "roc_auc": _safe_auc,
            "brier": lambda y, p: float(brier_score_loss(y, p)) if len(y) else float("nan"),
            "alert_rate": alert_rate, "alert_precision": alert_precision, "alert_recall": alert_recall}


@dataclass
class Evaluation:
    """The result of evaluating a model on labelled points.

    ``metrics``: one row per scorer (model, logistic_regression, checklist);
    ``by_group``: the model's metrics per group (attribute, group, metrics), alerts
    at the model's orange threshold (the 5% budget); ``frames``: the fairlearn
    ``MetricFrame`` per attribute (``.difference()``, ``.ratio()``);
    ``calibration``: calibration-curve data per scorer; ``period``: what was scored.
    """

    metrics: pd.DataFrame
    by_group: pd.DataFrame
    calibration: pd.DataFrame
    frames: dict[str, MetricFrame] = field(repr=False)
    period: dict = field(default_factory=dict)

    def table(self, columns=("roc_auc", "average_precision", "brier", "ece", "precision@1%", "precision@5%",
                             "precision@10%", "recall@5%")) -> str:
        """The metrics table as text."""
        cols = [c for c in columns if c in self.metrics.columns]
        head = f"{self.period.get('n', '?')} labelled points, {self.period.get('positives', '?')} escalated"
        return head + "\n" + self.metrics[cols].to_string(float_format=lambda v: f"{v:.4f}")

    def to_dict(self) -> dict:
        """Plain-JSON form for the manifest and the model card."""
        return _jsonable({"period": self.period, "scorers": self.metrics.to_dict(orient="index"),
                          "by_group": self.by_group.to_dict(orient="records"),
                          "calibration": self.calibration.to_dict(orient="records")})


def _evaluate_arrays(y: np.ndarray, X: pd.DataFrame, p_model: np.ndarray, baselines: dict,
                     alert_threshold: float, budgets, bins: int, period: dict) -> Evaluation:
    p_lr = _logistic_proba(X, baselines["logistic_regression"])
    s_ck, p_ck = _checklist_proba(X, baselines["checklist"])
    rows = {"model": score_metrics(y, p_model, budgets=budgets, bins=bins),
            "logistic_regression": score_metrics(y, p_lr, budgets=budgets, bins=bins),
            "checklist": score_metrics(y, p_ck, rank=s_ck, budgets=budgets, bins=bins)}
    metrics = pd.DataFrame.from_dict(rows, orient="index")
    metrics.index.name = "scorer"
    curves = pd.concat([calibration_curve(y, p, bins).assign(scorer=name)
                        for name, p in (("model", p_model), ("logistic_regression", p_lr), ("checklist", p_ck))],
                       ignore_index=True)
    groups = group_attributes(X)
    frames, parts = {}, []
    for attr in GROUP_ATTRIBUTES:
        mf = MetricFrame(metrics=_group_metrics(alert_threshold), y_true=y, y_pred=p_model,
                         sensitive_features=groups[attr].rename(attr))
        frames[attr] = mf
        bg = mf.by_group.reset_index().rename(columns={attr: "group"})
        bg.insert(0, "attribute", attr)
        parts.append(bg)
    by_group = pd.concat(parts, ignore_index=True)
    period = {**period, "n": int(len(y)), "positives": int(np.sum(y))}
    return Evaluation(metrics=metrics, by_group=by_group, calibration=curves, frames=frames, period=period)


# --------------------------------------------------------------------------- the model

class RiskModel:
    """A trained, calibrated escalation-risk model.

    Learned state: ``booster`` (lightgbm.Booster), ``calibrator`` (plain dict),
    ``baselines`` (plain dict), ``manifest`` (plain dict), ``feature_names``,
    ``thresholds`` (probability per alert level) and ``version``. Build one with
    :func:`train` or :func:`load_model`.
    """

    def __init__(self, booster: lgb.Booster, calibrator: dict, manifest: dict, baselines: dict):
        self.booster = booster
        self.calibrator = calibrator
        self.manifest = manifest
        self.baselines = baselines
        self.feature_names: list[str] = list(manifest["features"]["names"])
        self.thresholds: dict[str, float] = dict(manifest["thresholds"])
        self.version: str = manifest["model_version"]

    def __repr__(self) -> str:
        return (f"RiskModel(version={self.version!r}, cutoff={self.manifest.get('cutoff')!r}, "
                f"features={len(self.feature_names)}, calibration={self.calibrator.get('method')!r})")

    @property
    def label_settings(self) -> dict:
        return dict(self.manifest["labels"])

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        """The feature matrix as LightGBM reads it: floats, categoricals as their codes
        in the manifest's category order (missing or unknown: NaN). Built by hand rather
        than by LightGBM's pandas path, whose per-call overhead dominated single rows."""
        missing = [c for c in self.feature_names if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks feature column(s) {missing[:5]}{'...' if len(missing) > 5 else ''}; "
                             f"build it with escalation_risk.features.build_features")
        cats = self.manifest["features"]["categories"]
        M = np.empty((len(X), len(self.feature_names)), dtype=np.float64)
        num = [j for j, c in enumerate(self.feature_names) if c not in cats]
        # One block copy for the numeric columns: per-column access cost more than the trees.
        M[:, num] = X[[self.feature_names[j] for j in num]].to_numpy(dtype=np.float64, na_value=np.nan)
        for j, c in enumerate(self.feature_names):
            if c not in cats:
                continue
            col, values = X[c], cats[c]
            if not (isinstance(col.dtype, pd.CategoricalDtype) and list(col.cat.categories) == values):
                col = pd.Series(pd.Categorical(col.astype(object), categories=values))
            codes = col.cat.codes.to_numpy(dtype=np.float64)
            codes[codes < 0] = np.nan
            M[:, j] = codes
        return M

    def _predict(self, X: pd.DataFrame, **kind) -> np.ndarray:
        # One thread for a handful of rows: starting threads costs more than the trees.
        threads = 1 if len(X) < 256 else self.manifest.get("num_threads", 0) or 0
        return np.asarray(self.booster.predict(self._matrix(X), num_threads=threads, **kind), dtype=float)

    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        """The booster's log-odds for each row of ``X`` (uncalibrated)."""
        if len(X) == 0:
            return np.zeros(0)
        return self._predict(X, raw_score=True)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of a crime within the horizon (0.2: about one in five)."""
        return apply_calibrator(self.raw_score(X), self.calibrator)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """TreeSHAP contributions to the log-odds: one column per feature plus ``bias``;
        each row sums to :meth:`raw_score`."""
        cols = self.feature_names + ["bias"]
        if len(X) == 0:
            return pd.DataFrame(columns=cols, dtype=float)
        C = self._predict(X, pred_contrib=True)
        return pd.DataFrame(C, columns=cols, index=X.index)

    def reasons(self, X: pd.DataFrame, top: int = 3, lang: str = "en") -> list[list[dict]]:
        """Up to ``top`` risk-raising reasons per row (feature, value, contribution, en, zh,
        and ``text`` in ``lang``). Costs a TreeSHAP pass: budget up to ~1.5 ms per row
        (measured 0.13 ms per row for a 150-tree model on 2 cores), against ~0.005 ms
        for the probability alone."""
        if lang not in ("en", "zh"):
            raise ValueError(f"lang must be 'en' or 'zh', got {lang!r}")
        out = top_reasons(self.contributions(X), X, top)
        for row in out:
            for r in row:
                r["text"] = r[lang]
        return out

    def importance(self, X: pd.DataFrame) -> pd.DataFrame:
        """Global importance on ``X``: mean |SHAP| per feature, largest first."""
        return global_importance(self.contributions(X))

    def score(self, ds: Dataset, when, *, history: pd.DataFrame | None = None,
              thresholds: dict[str, float] | None = None, reasons_for: str = "alerts",
              top_reasons: int = 3) -> pd.DataFrame:
        """Score disputes: probability, level, trend, reasons and plan per point.

        ``when`` is a timestamp (every dispute open then is scored at that moment) or
        a DataFrame of dispute_id, as_of. ``history`` holds earlier scores (dispute_id,
        probability) for the trend. Levels use the manifest's thresholds unless
        ``thresholds`` is given. Reasons (TreeSHAP: budget up to ~1.5 ms per row,
        measured 0.13 ms for a 150-tree model, 30x the probability) are computed only
        for alerted rows (red, orange, yellow) unless ``reasons_for="all"``;
        rows without reasons get empty lists and, when blue, the routine plan.
        """
        if reasons_for not in ("alerts", "all"):
            raise ValueError(f"reasons_for must be 'alerts' or 'all', got {reasons_for!r}")
        if isinstance(when, pd.DataFrame):
            points = when[["dispute_id", "as_of"]].reset_index(drop=True)
        else:
            points = open_points(ds, when)
        cols = ["dispute_id", "as_of", "probability", "level", "trend", "delta", "reasons", "reasons_zh",
                "reason_features", "plan"]
        if len(points) == 0:
            return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
        X = build_features(ds, points)
        p = self.predict_proba(X)
        levels = assign_levels(p, thresholds or self.thresholds)
        out = pd.DataFrame({"dispute_id": X["dispute_id"].to_numpy(dtype=object),
                            "as_of": X["as_of"].to_numpy(dtype="datetime64[ns]"), "probability": p})
        trend, delta = compute_trend(out, history)
        out["level"], out["trend"], out["delta"] = levels, trend, delta
        want = np.ones(len(X), bool) if reasons_for == "all" else np.isin(levels, ALERT_LEVELS)
        en = [[] for _ in range(len(X))]
        zh = [[] for _ in range(len(X))]
        feats = [[] for _ in range(len(X))]
        rows = np.flatnonzero(want)
        if len(rows):
            sub = X.iloc[rows]
            for i, rs in zip(rows, _reasons_of(self, sub, top_reasons)):
                en[i] = [r["en"] for r in rs]
                zh[i] = [r["zh"] for r in rs]
                feats[i] = [r["feature"] for r in rs]
        out["reasons"], out["reasons_zh"], out["reason_features"] = en, zh, feats
        out["plan"] = choose_plans(X["category"].astype(object).tolist(), feats, levels)
        return out[cols]

    def evaluate(self, ds: Dataset, points: pd.DataFrame | None = None, *, start=None, end=None,
                 budgets=DEFAULT_BUDGETS) -> Evaluation:
        """See :func:`evaluate`."""
        return evaluate(self, ds, points, start=start, end=end, budgets=budgets)

    def save(self, out_dir) -> None:
        """Write the model directory (see :mod:`.artifacts`); no pickle."""
        write_model_dir(out_dir, booster_text=self.booster.model_to_string(), calibrator=self.calibrator,
                        baselines=self.baselines, manifest=self.manifest)


def _reasons_of(model: RiskModel, X: pd.DataFrame, top: int) -> list[list[dict]]:
    return top_reasons(model.contributions(X), X, top)


def load_model(path) -> RiskModel:
    """Load a model directory written by :meth:`RiskModel.save`, verifying every file.

    Raises :class:`~.artifacts.ModelLoadError` for a tampered, foreign or
    incompatible directory.
    """
    parts = read_model_dir(path, expected_features=FEATURE_NAMES)
    try:
        booster = lgb.Booster(model_str=parts["booster_text"])
    except lgb.basic.LightGBMError as e:
        raise ModelLoadError(f"{path}/model.txt: not a LightGBM model ({e})") from None
    return RiskModel(booster, parts["calibrator"], parts["manifest"], parts["baselines"])


# --------------------------------------------------------------------------- training

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
    manifest = _jsonable({
        "model_version": version,
        "library_version": __version__,
        "lightgbm_version": lgb.__version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "cutoff": cutoff, "seed": seed,
        "labels": {"horizon_days": horizon_days, "offences": cfg["offences"], "shared_party": cfg["shared_party"]},
        "features": {"names": FEATURE_NAMES,
                     "dtypes": {n: ("category" if n in CATEGORICAL else "float64") for n in FEATURE_NAMES},
                     "categories": {c: list(REGISTRY[c].categories) for c in CATEGORICAL}},
        "training_data": {"fingerprint": full_fingerprint, "fingerprint_at_cutoff": known.fingerprint(),
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


def evaluate(model: RiskModel, ds: Dataset, points: pd.DataFrame | None = None, *, start=None, end=None,
             budgets=DEFAULT_BUDGETS) -> Evaluation:
    """Metrics of the model and both baselines on labelled points of ``ds``.

    Default points: every dispute reported in ``[start, end)`` at its report time,
    ``start`` defaulting to the model's cutoff and ``end`` to the end of the data.
    Labels follow the model's label settings; unlabelled points are left out.
    """
    if points is None:
        start = pd.Timestamp(start) if start is not None else pd.Timestamp(model.manifest["cutoff"])
        points = report_points(ds, start, end)
        period = {"what": "disputes at report time", "start": start, "end": end if end is not None else data_end(ds)}
    else:
        points = points[["dispute_id", "as_of"]].reset_index(drop=True)
        period = {"what": "given points", "start": points["as_of"].min(), "end": points["as_of"].max()}
    lab = model.label_settings
    y = make_labels(ds, points, horizon_days=lab["horizon_days"], offences=lab["offences"],
                    shared_party=lab["shared_party"]).to_numpy()
    ok = ~np.isnan(y)
    if not ok.any():
        raise ValueError(f"no labelled points to evaluate ({len(points)} points, none with its "
                         f"{lab['horizon_days']}-day horizon inside the data)")
    points, y = points[ok].reset_index(drop=True), y[ok]
    X = build_features(ds, points)
    bins = model.manifest.get("training", {}).get("config", {}).get("ece_bins", 10)
    return _evaluate_arrays(y, X, model.predict_proba(X), model.baselines, model.thresholds["orange"],
                            budgets, bins, period)


def backtest(ds: Dataset, cutoffs, *, horizon_days: int = DEFAULT_HORIZON_DAYS, seed: int = 0,
             config: dict | None = None) -> pd.DataFrame:
    """Train at each cutoff and evaluate on the disputes reported until the next one
    (the last until the end of the data): one row per cutoff and scorer."""
    cutoffs = sorted(pd.Timestamp(c) for c in cutoffs)
    rows = []
    for i, c in enumerate(cutoffs):
        end = cutoffs[i + 1] if i + 1 < len(cutoffs) else None
        model = train(ds, cutoff=c, horizon_days=horizon_days, seed=seed, config=config)
        ev = evaluate(model, ds, start=c, end=end)
        m = ev.metrics.reset_index()
        m.insert(0, "cutoff", c)
        m.insert(1, "test_end", end if end is not None else data_end(ds))
        m["model_version"] = model.version
        rows.append(m)
    return pd.concat(rows, ignore_index=True)


__all__ = ["RiskModel", "Evaluation", "train", "evaluate", "backtest", "load_model", "fit_calibrator",
           "apply_calibrator", "score_metrics", "expected_calibration_error", "calibration_curve",
           "checklist_score", "checklist_items", "group_attributes", "report_points", "open_points",
           "example_points", "DEFAULT_CONFIG", "LGB_PARAMS", "CHECKLIST_ITEMS", "ModelLoadError"]
