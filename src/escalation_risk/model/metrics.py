"""Metrics of a scorer on labelled points: ranking, calibration, budgets, groups."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from ..artifacts import jsonable
from .baselines import _checklist_proba, _logistic_proba

SCORERS = ("model", "logistic_regression", "checklist")
DEFAULT_BUDGETS = (0.01, 0.05, 0.10)
GROUP_ATTRIBUTES = ("gender", "age_band", "hukou", "dispute_category")


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
        return jsonable({"period": self.period, "scorers": self.metrics.to_dict(orient="index"),
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

