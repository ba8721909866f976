"""Drift: has the district moved away from what the model was validated on?

A window is a set of nights: up to ``NIGHTS`` (6) evenly spaced nights from its first
to its last day, each scoring every dispute open then (as the nightly job does), at
most ``max_points`` of those points kept (a seeded sample). The *reference* window
defaults to the model's own validation window (``manifest.training.periods``); the
*recent* one is given.

Per feature, the **population stability index**
``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)`` over bins ``i``, with ``e`` the reference's
and ``a`` the recent window's share of points in each bin. Numeric features are cut
at the reference's deciles (ties merged), categorical ones bin by category, and
missing values are a bin of their own; a share of 0 is taken as ``EPSILON`` (1e-4) so
that an empty bin does not give infinity. Beside it, the change in the feature's
missing rate. Reading: PSI below 0.10 stable, 0.10-0.25 moderate, above 0.25 moved
(``MOVED``); a missing rate that changes by more than ``MISSING_MOVED`` (0.10) moved too.
Calendar features (``SEASONAL``: the month) differ between windows by design and read
``seasonal``: shown, never counted in the verdict.

The score distribution (quantiles, share per level, PSI of the probabilities over
the reference's deciles), and, where the recent points' horizon has passed, the
calibration there: mean predicted against the observed rate, Brier score and
expected calibration error.

The verdict: ``retrain`` when any feature (or the score) moved, naming the features
that moved most; ``watch`` when some are moderate; ``stable`` otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss

from .clock import to_moment
from .dataset import Dataset
from .features import CATEGORICAL
from .labels import make_labels
from .model import RiskModel, expected_calibration_error, open_points
from .response import ALERT_LEVELS, assign_levels
from .stability import BINS, EPSILON, histograms, psi, psi_from_counts

__all__ = ["psi", "psi_from_counts", "feature_drift", "drift_report", "night_drift", "DriftReport",
           "EPSILON", "MOVED", "MODERATE", "MISSING_MOVED", "NIGHTS", "SEASONAL", "check_night",
           "night_check"]

log = logging.getLogger(__name__)

MODERATE = 0.10
MOVED = 0.25
MISSING_MOVED = 0.10
#: Calendar features change with the window by design: reported, never a reason to retrain.
SEASONAL = ("as_of_month",)
NIGHTS = 6


def feature_drift(reference: pd.DataFrame, recent: pd.DataFrame, features: Sequence[str], *,
                  categorical: Sequence[str] = (), seasonal: Sequence[str] = (), bins: int = BINS,
                  threshold: float = MOVED) -> pd.DataFrame:
    """Per feature: psi, missing rates in both windows and their change, and a reading
    (stable / moderate / moved above ``threshold``; ``seasonal`` features read "seasonal"),
    largest PSI first."""
    rows = []
    cats = set(categorical)
    for f in features:
        e, a = histograms(reference[f], recent[f], f in cats, bins)
        p = psi_from_counts(e, a)
        m_ref, m_cur = float(reference[f].isna().mean()), float(recent[f].isna().mean())
        moved = p > threshold or abs(m_cur - m_ref) > MISSING_MOVED
        rows.append({"feature": f, "psi": p, "missing_reference": m_ref, "missing_recent": m_cur,
                     "missing_change": m_cur - m_ref,
                     "reading": "seasonal" if f in seasonal else "moved" if moved
                     else "moderate" if p > MODERATE else "stable"})
    out = pd.DataFrame(rows, columns=["feature", "psi", "missing_reference", "missing_recent", "missing_change",
                                      "reading"])
    return out.sort_values(["psi", "feature"], ascending=[False, True], kind="stable").reset_index(drop=True)


@dataclass
class DriftReport:
    """Drift of a recent window against a reference one: see the module docstring."""

    reference: tuple[pd.Timestamp, pd.Timestamp]
    recent: tuple[pd.Timestamp, pd.Timestamp]
    n_reference: int
    n_recent: int
    features: pd.DataFrame
    score: dict[str, Any]
    calibration: dict[str, Any] | None
    verdict: str
    verdict_zh: str
    moved: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        f = self.features
        lines = [f"reference {self.reference[0]:%Y-%m-%d}..{self.reference[1]:%Y-%m-%d} ({self.n_reference} points), "
                 f"recent {self.recent[0]:%Y-%m-%d}..{self.recent[1]:%Y-%m-%d} ({self.n_recent} points)",
                 f"features: {int((f['reading'] == 'moved').sum())} moved, "
                 f"{int((f['reading'] == 'moderate').sum())} moderate, {int((f['reading'] == 'stable').sum())} stable, "
                 f"{int((f['reading'] == 'seasonal').sum())} seasonal",
                 f.head(10).to_string(index=False, float_format=lambda v: f"{v:.3f}"),
                 f"score: PSI {self.score['psi']:.3f}; median {self.score['recent_quantiles']['50%']:.3f} "
                 f"(reference {self.score['reference_quantiles']['50%']:.3f}); alerted "
                 f"{self.score['recent_alerted']:.1%} (reference {self.score['reference_alerted']:.1%})"]
        c = self.calibration
        if c is None:
            lines.append("calibration: no recent point's horizon has passed yet")
        else:
            lines.append(f"calibration on {c['n']} labelled points: predicted {c['mean_predicted']:.3f}, "
                         f"observed {c['observed']:.3f}, Brier {c['brier']:.4f}, ECE {c['ece']:.4f}")
        lines.append(f"verdict: {self.verdict}")
        return "\n".join(lines)


def _window_points(ds: Dataset, start: pd.Timestamp, end: pd.Timestamp, max_points: int, seed: int) -> pd.DataFrame:
    if end < start:
        raise ValueError(f"window: the end {end:%Y-%m-%d} is before the start {start:%Y-%m-%d}")
    nights = pd.DatetimeIndex([start]) if end == start else pd.date_range(start, end, periods=NIGHTS)
    pts = pd.concat([open_points(ds, n) for n in nights.unique()], ignore_index=True)
    if len(pts) > max_points:
        pts = pts.sample(n=max_points, random_state=seed).sort_index().reset_index(drop=True)
    return pts


def _verdict(feats: pd.DataFrame, score_psi: float, threshold: float) -> tuple[str, str, list[str]]:
    moved = feats.loc[feats["reading"] == "moved", "feature"].tolist()
    moderate = feats.loc[feats["reading"] == "moderate", "feature"].tolist()
    if moved or score_psi > threshold:
        names = ", ".join(moved[:5]) + (f" and {len(moved) - 5} more" if len(moved) > 5 else "")
        what = f"{len(moved)} feature(s) moved ({names})" if moved else "the score distribution moved"
        what_zh = f"{len(moved)} 个特征漂移（{names}）" if moved else "风险分布漂移"
        return f"retrain: {what}", f"建议重新训练：{what_zh}", moved
    if moderate:
        return (f"watch: {len(moderate)} feature(s) moderately shifted ({', '.join(moderate[:5])})",
                f"关注：{len(moderate)} 个特征轻度偏移", [])
    return "stable: no feature moved", "稳定：特征分布无明显变化", []


def _quantiles(p: np.ndarray) -> dict[str, float]:
    qs = (0.1, 0.5, 0.9, 0.99)
    v = np.quantile(p, qs) if len(p) else np.full(len(qs), np.nan)
    return {f"{q:.0%}": float(x) for q, x in zip(qs, v)}


def _reference_window(model: RiskModel) -> tuple[pd.Timestamp, pd.Timestamp]:
    try:
        a, b = model.manifest["training"]["periods"]["validation_as_of"]
    except (KeyError, TypeError, ValueError):
        raise ValueError("the model's manifest names no validation window: give the reference window") from None
    return pd.Timestamp(a), pd.Timestamp(b)


def drift_report(model: RiskModel, ds: Dataset, *, start: Any, end: Any, reference: tuple[Any, Any] | None = None,
                 max_points: int = 5000, seed: int = 0, recent_points: pd.DataFrame | None = None,
                 threshold: float = MOVED) -> DriftReport:
    """Drift of the window ``[start, end]`` (dates: from the start of ``start``'s day to the
    end of ``end``'s, :func:`escalation_risk.clock.to_moment`) against ``reference`` (default: the model's
    validation window). ``recent_points`` (dispute_id, as_of) replaces the recent
    window's nights, e.g. tonight's open disputes. A feature whose PSI exceeds
    ``threshold`` (0.25) moved."""
    if not threshold > 0:
        raise ValueError(f"threshold: expected a PSI above 0, got {threshold!r}")
    r0, r1 = (_reference_window(model) if reference is None
              else (to_moment(reference[0], role="start", what="reference start"),
                    to_moment(reference[1], what="reference end")))
    s, e = to_moment(start, role="start", what="start"), to_moment(end, what="end")
    ref_pts = _window_points(ds, r0, r1, max_points, seed)
    if recent_points is None:
        cur_pts = _window_points(ds, s, e, max_points, seed)
    else:
        cur_pts = recent_points[["dispute_id", "as_of"]].reset_index(drop=True)
        if len(cur_pts) > max_points:
            cur_pts = cur_pts.sample(n=max_points, random_state=seed).sort_index().reset_index(drop=True)
    if len(ref_pts) == 0 or len(cur_pts) == 0:
        which = "reference" if len(ref_pts) == 0 else "recent"
        raise ValueError(f"the {which} window holds no open dispute: choose other dates")
    Xr, Xc = (model.features(ds, p) for p in (ref_pts, cur_pts))
    feats = feature_drift(Xr, Xc, model.feature_names, seasonal=SEASONAL, threshold=threshold,
                          categorical=[c for c in CATEGORICAL if c in model.feature_names])
    pr, pc = model.predict_proba(Xr), model.predict_proba(Xc)
    lv_r, lv_c = assign_levels(pr, model.thresholds), assign_levels(pc, model.thresholds)
    score_psi = psi(pr, pc)
    score: dict[str, Any] = {
             "psi": score_psi, "reference_quantiles": _quantiles(pr), "recent_quantiles": _quantiles(pc),
             "reference_levels": {lv: float(np.mean(lv_r == lv)) for lv in (*ALERT_LEVELS, "blue")},
             "recent_levels": {lv: float(np.mean(lv_c == lv)) for lv in (*ALERT_LEVELS, "blue")},
             "reference_alerted": float(np.isin(lv_r, ALERT_LEVELS).mean()),
             "recent_alerted": float(np.isin(lv_c, ALERT_LEVELS).mean())}
    settings = model.label_settings
    y = make_labels(ds, Xc[["dispute_id", "as_of"]], horizon_days=settings["horizon_days"],
                    offences=settings.get("offences"), shared_party=settings.get("shared_party", True)).to_numpy()
    known = ~np.isnan(y)
    calibration = None
    if known.sum() > 0:
        yk, pk = y[known], pc[known]
        calibration = {"n": int(known.sum()), "positives": int(yk.sum()), "mean_predicted": float(pk.mean()),
                       "observed": float(yk.mean()), "brier": float(brier_score_loss(yk, pk, labels=[0, 1])),
                       "ece": expected_calibration_error(yk, pk)}
    verdict, verdict_zh, moved = _verdict(feats, score_psi, threshold)
    return DriftReport(reference=(r0, r1), recent=(s, e), n_reference=len(ref_pts), n_recent=len(cur_pts),
                       features=feats, score=score, calibration=calibration, verdict=verdict, verdict_zh=verdict_zh,
                       moved=moved)


def night_drift(model: RiskModel, ds: Dataset, night: Any, *, max_points: int = 2000, seed: int = 0,
                threshold: float = MOVED) -> DriftReport:
    """The nightly check: tonight's open disputes against the model's validation window.

    Logs a warning naming the features that moved; the caller decides what else to do
    with the report (the briefing prints its verdict).
    """
    t = to_moment(night, what="night")
    rep = drift_report(model, ds, start=t, end=t, recent_points=open_points(ds, t), max_points=max_points, seed=seed,
                       threshold=threshold)
    if rep.moved or rep.verdict.startswith("retrain"):
        log.warning("drift on %s: %s", f"{t:%Y-%m-%d}", rep.verdict)
    return rep


def check_night(model: RiskModel, ds: Dataset, night: Any, *, max_points: int = 2000, seed: int = 0,
                threshold: float = MOVED) -> DriftReport | None:
    """:func:`night_drift` for the nightly job: a drift check that cannot fail the night
    (a model without a validation window, an empty window: logged, None returned)."""
    try:
        return night_drift(model, ds, night, max_points=max_points, seed=seed, threshold=threshold)
    except ValueError as e:
        log.warning("drift not checked: %s", e)
        return None


def night_check(model: RiskModel, night: Any) -> Callable[[Dataset], DriftReport | None]:
    """The night's drift check of one district's data (:func:`check_night`), as
    :func:`escalation_risk.province.score_loaded` takes it (``drift=``): every engine of
    the nightly job checks a district this one way."""
    return partial(check_night, model, night=night)
