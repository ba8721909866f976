"""Metrics of a scorer on labelled points: ranking, calibration, budgets, groups."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from ..artifacts import jsonable
from .baselines import _checklist_proba, _logistic_proba

SCORERS = ("model", "logistic_regression", "checklist")
DEFAULT_BUDGETS = (0.01, 0.05, 0.10)
GROUP_ATTRIBUTES = ("gender", "age_band", "hukou", "dispute_category")
K = TypeVar("K")


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


# The metrics given a 95% interval: the ranking ones, the alert-budget precision and the
# calibration error (the figures the quality bar is set in).
INTERVAL_METRICS = ("roc_auc", "average_precision", "precision@5%", "ece", "brier")


def _fast_auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC from average ranks (ties count half), as ``roc_auc_score``."""
    n1 = y.sum()
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(s)
    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _fast_ap(y: np.ndarray, s: np.ndarray) -> float:
    """Average precision as ``average_precision_score`` (tied scores form one step),
    without its validation overhead, which dominated the bootstrap."""
    pos = y.sum()
    if pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    ys, ss = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(ss)), len(ss) - 1]  # the end of each run of tied scores
    tps = np.cumsum(ys)[last]
    precision = tps / (last + 1)
    recall = tps / pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _boot_metric(name: str, y: np.ndarray, p: np.ndarray, rank: np.ndarray, bins: int) -> float:
    if name == "roc_auc":
        return _fast_auc(y, rank)
    if name == "average_precision":
        return _fast_ap(y, rank)
    if name == "ece":
        return expected_calibration_error(y, p, bins)
    if name == "brier":
        return float(np.mean((p - y) ** 2))
    if name.startswith("precision@"):
        return _at_budget(y, rank, float(name[len("precision@"):-1]) / 100)[0]
    raise ValueError(f"no bootstrap for metric {name!r}")


def resamples(n: int, n_boot: int, seed: int, groups: np.ndarray | None = None) -> list[np.ndarray]:
    """The row indices of ``n_boot`` bootstrap resamples of ``n`` rows, drawn with ``seed``;
    with ``groups`` (one label per row) whole groups are drawn, their rows together."""
    rng = np.random.default_rng(seed)
    if groups is None:
        return [rng.integers(0, n, n) for _ in range(n_boot)]
    codes, uniq = pd.factorize(pd.Series(groups, dtype=object))
    order = np.argsort(codes, kind="stable")
    members = np.split(order, np.cumsum(np.bincount(codes, minlength=len(uniq)))[:-1])
    return [np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
            for _ in range(n_boot)]


def paired_bootstrap(figures: Callable[[np.ndarray], dict[K, Any]], n: int, *, n_boot: int = 200, seed: int = 0,
                     groups: np.ndarray | None = None, level: float = 0.95) -> dict[K, tuple[Any, Any, Any]]:
    """Percentile bootstrap intervals of the figures ``figures(rows)`` computes on rows of
    ``n`` (a dict: key to a number or a tuple of numbers).

    Every figure of one resample is computed on the same rows (:func:`resamples`), so the
    interval of a difference made inside ``figures`` is paired. Returns, per key, the
    estimate on all rows and the interval's ends (arrays for a tuple); resamples where a
    figure is NaN (e.g. a group with no alert has no precision) are left out of its
    interval, and a figure NaN in every resample has a NaN interval."""
    est = figures(np.arange(n))
    boots = [figures(idx) for idx in resamples(n, n_boot, seed, groups)]
    a = round((1 - level) / 2, 12)  # 0.025 at 95%, not the 0.025000000000000022 of float subtraction
    out = {}
    for key, e in est.items():
        b = np.array([bt[key] for bt in boots], dtype=float)
        with warnings.catch_warnings():  # an all-NaN figure: its interval is NaN, said as such
            warnings.simplefilter("ignore", RuntimeWarning)
            out[key] = (e, np.nanquantile(b, a, axis=0), np.nanquantile(b, 1 - a, axis=0))
    return out


def bootstrap_intervals(y: np.ndarray, scorers: dict[str, tuple[np.ndarray, np.ndarray]], *,
                        groups: np.ndarray | None = None, metrics=INTERVAL_METRICS, n_boot: int = 200,
                        level: float = 0.95, bins: int = 10, seed: int = 0,
                        reference: str | None = "model") -> pd.DataFrame:
    """Percentile bootstrap intervals of each scorer's metrics, and of the paired
    difference between ``reference`` and every other scorer (:func:`paired_bootstrap`).

    ``scorers`` maps a name to (probabilities, ranking score). With ``groups`` (e.g.
    the dispute of each dispute-night) whole groups are resampled, so repeated scores
    of one dispute do not narrow the interval. One long table: scorer, metric,
    estimate, lo, hi (a difference is named ``"model - <scorer>"``). The calibration
    error is biased upwards under resampling (noise adds to it), so its interval sits
    above the estimate: read its upper end as a conservative bound.
    """
    y = np.asarray(y, dtype=float)
    names = list(scorers)
    arrays = {n: (np.asarray(scorers[n][0]), np.asarray(scorers[n][1])) for n in names}

    def figures(idx: np.ndarray) -> dict[tuple[str, str], float]:
        yb = y[idx]
        out = {(n, m): _boot_metric(m, yb, arrays[n][0][idx], arrays[n][1][idx], bins)
               for n in names for m in metrics}
        if reference in names:
            out.update({(f"{reference} - {n}", m): out[(reference, m)] - out[(n, m)]
                        for n in names if n != reference for m in metrics})
        return out

    return pd.DataFrame([{"scorer": n, "metric": m, "estimate": e, "lo": float(lo), "hi": float(hi)}
                         for (n, m), (e, lo, hi) in paired_bootstrap(figures, len(y), n_boot=n_boot, seed=seed,
                                                                     groups=groups, level=level).items()])


def format_interval(row) -> str:
    """``0.785 [0.762, 0.806]``."""
    return f"{row['estimate']:.3f} [{row['lo']:.3f}, {row['hi']:.3f}]"


@dataclass
class Evaluation:
    """The result of evaluating a model on labelled points.

    ``metrics``: one row per scorer (model, logistic_regression, checklist);
    ``by_group``: the model's metrics per group (attribute, group, metrics), alerts
    at the model's orange threshold (the 5% budget); ``frames``: the fairlearn
    ``MetricFrame`` per attribute (``.difference()``, ``.ratio()``);
    ``calibration``: calibration-curve data per scorer; ``period``: what was scored;
    ``intervals``: 95% bootstrap intervals (:func:`bootstrap_intervals`), when asked.
    """

    metrics: pd.DataFrame
    by_group: pd.DataFrame
    calibration: pd.DataFrame
    frames: dict[str, MetricFrame] = field(repr=False)
    period: dict = field(default_factory=dict)
    intervals: pd.DataFrame | None = None

    def table(self, columns=("roc_auc", "average_precision", "brier", "ece", "precision@1%", "precision@5%",
                             "precision@10%", "recall@5%")) -> str:
        """The metrics table as text."""
        cols = [c for c in columns if c in self.metrics.columns]
        head = f"{self.period.get('n', '?')} labelled points, {self.period.get('positives', '?')} escalated"
        text = head + "\n" + self.metrics[cols].to_string(float_format=lambda v: f"{v:.4f}")
        if self.intervals is not None and len(self.intervals):
            text += "\n95% bootstrap intervals:\n" + self.interval_table().to_string()
        return text

    def interval_table(self) -> pd.DataFrame:
        """Estimate and 95% interval per scorer (rows) and metric (columns), as text."""
        if self.intervals is None or not len(self.intervals):
            return pd.DataFrame()
        iv = self.intervals.assign(text=self.intervals.apply(format_interval, axis=1))
        return iv.pivot(index="scorer", columns="metric", values="text").reindex(
            index=list(dict.fromkeys(iv["scorer"])), columns=list(dict.fromkeys(iv["metric"])))

    def to_dict(self) -> dict:
        """Plain-JSON form for the manifest and the model card."""
        out = {"period": self.period, "scorers": self.metrics.to_dict(orient="index"),
               "by_group": self.by_group.to_dict(orient="records"),
               "calibration": self.calibration.to_dict(orient="records")}
        if self.intervals is not None:
            out["intervals"] = self.intervals.to_dict(orient="records")
        return jsonable(out)


def baseline_scores(X: pd.DataFrame, baselines: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(probabilities, ranking score) of each stored baseline on ``X``."""
    p_lr = _logistic_proba(X, baselines["logistic_regression"])
    s_ck, p_ck = _checklist_proba(X, baselines["checklist"])
    return {"logistic_regression": (p_lr, p_lr), "checklist": (p_ck, s_ck)}


def _evaluate_arrays(y: np.ndarray, X: pd.DataFrame, p_model: np.ndarray, baselines: dict,
                     alert_threshold: float, budgets, bins: int, period: dict, *,
                     scores: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
                     intervals: bool = False, groups: np.ndarray | None = None, seed: int = 0,
                     n_boot: int = 200) -> Evaluation:
    """Metrics of the model and the baselines; ``scores`` gives the baselines' (proba, rank)
    directly (e.g. out-of-time predictions) instead of applying ``baselines`` to ``X``."""
    scorers = {"model": (np.asarray(p_model, float), np.asarray(p_model, float)),
               **(scores if scores is not None else baseline_scores(X, baselines))}
    rows = {name: score_metrics(y, p, rank=r, budgets=budgets, bins=bins) for name, (p, r) in scorers.items()}
    metrics = pd.DataFrame.from_dict(rows, orient="index")
    metrics.index.name = "scorer"
    curves = pd.concat([calibration_curve(y, p, bins).assign(scorer=name) for name, (p, _) in scorers.items()],
                       ignore_index=True)
    groups_of = group_attributes(X)
    frames, parts = {}, []
    for attr in GROUP_ATTRIBUTES:
        mf = MetricFrame(metrics=_group_metrics(alert_threshold), y_true=y, y_pred=p_model,
                         sensitive_features=groups_of[attr].rename(attr))
        frames[attr] = mf
        bg = mf.by_group.reset_index().rename(columns={attr: "group"})
        bg.insert(0, "attribute", attr)
        parts.append(bg)
    by_group = pd.concat(parts, ignore_index=True)
    period = {**period, "n": int(len(y)), "positives": int(np.sum(y))}
    iv = (bootstrap_intervals(y, scorers, groups=groups, bins=bins, seed=seed, n_boot=n_boot)
          if intervals else None)
    return Evaluation(metrics=metrics, by_group=by_group, calibration=curves, frames=frames, period=period,
                      intervals=iv)
