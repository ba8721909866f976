"""The trees and the linear model together: a blend of their log-odds, weighted out of time.

A boosted tree model learns a smooth, additive effect of many weak features in steps and
spends trees on it; a logistic regression on the same features gets it in one coefficient
each. Stacking the two (a logistic regression on the two out-of-time log-odds) is the
general remedy: the weights come from the rolling-origin windows, where neither model saw
the labels, never from the months it is judged on. ``auto`` keeps the blend only when its
cross-validated log-loss on those windows is lower than that of the trees alone (Platt on
the trees' raw score: the same number of parameters bar one). The fits and the folds are
calibration's (:func:`.calibration.platt_fit`, :func:`.calibration.cv_folds`).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import log_loss

from .calibration import cv_folds, platt_fit


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def blend_raw(trees: np.ndarray, linear: np.ndarray, spec: dict) -> np.ndarray:
    """The blended log-odds: ``w_trees * trees + w_linear * linear + intercept``."""
    return spec["w_trees"] * np.asarray(trees) + spec["w_linear"] * np.asarray(linear) + spec["intercept"]


def fit_blend(trees: np.ndarray, linear: np.ndarray, y: np.ndarray, *, method: str = "auto", folds: int = 5,
              seed: int = 0) -> dict:
    """Weights of the trees' and the linear model's out-of-time log-odds (``trees``,
    ``linear``) for labels ``y``. Returns ``w_trees``, ``w_linear``, ``intercept``,
    ``chosen`` (whether the blend is used) and ``cv`` (cross-validated log-loss of the
    trees alone and of the blend). A negative weight (one model only adds noise) is not
    a blend: the trees alone are kept."""
    if method not in ("auto", "blend"):
        raise ValueError(f"config linear must be 'auto', 'blend' or 'none', got {method!r}")
    trees, linear, y = np.asarray(trees, float), np.asarray(linear, float), np.asarray(y, int)
    A = np.column_stack([trees, linear])
    cv: dict[str, float] = {}
    splits = cv_folds(y, folds, seed)
    if splits:
        p_t, p_b = np.empty(len(y)), np.empty(len(y))
        for tr, te in splits:
            p_t[te] = platt_fit(A[tr, :1], y[tr]).predict_proba(A[te, :1])[:, 1]
            p_b[te] = platt_fit(A[tr], y[tr]).predict_proba(A[te])[:, 1]
        cv = {"trees": float(log_loss(y, p_t, labels=[0, 1])), "blend": float(log_loss(y, p_b, labels=[0, 1]))}
    st = platt_fit(A, y)
    wt, wl = (float(v) for v in st.coef_[0])
    ok = wt > 0 and wl > 0
    chosen = ok and (method == "blend" or (bool(cv) and cv["blend"] < cv["trees"]))
    return {"w_trees": wt, "w_linear": wl, "intercept": float(st.intercept_[0]), "chosen": bool(chosen), "cv": cv}
