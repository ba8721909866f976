"""Calibration maps from raw log-odds to probabilities: Platt or isotonic, stored as plain numbers."""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss
from sklearn.model_selection import StratifiedKFold


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


def platt_fit(A: np.ndarray, y: np.ndarray) -> LogisticRegression:
    """Platt's logistic fit of labels ``y`` on the columns of ``A`` (log-odds), all but
    unpenalised: one column calibrates a score, several stack them (model.blend)."""
    return LogisticRegression(C=1e6, max_iter=1000).fit(A, y)


def cv_folds(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) rows of ``folds`` shuffled stratified folds of labels ``y``, fewer when
    the rarer outcome has fewer rows; none when it has under two (no cross-validation)."""
    n_splits = int(min(folds, np.bincount(y, minlength=2).min()))
    if n_splits < 2:
        return []
    return list(StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def _fit_platt(raw: np.ndarray, y: np.ndarray) -> dict:
    lr = platt_fit(raw.reshape(-1, 1), y)
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
    splits = cv_folds(y, folds, seed)
    if splits:
        for name, fit in _FITTERS.items():
            p = np.empty(len(y))
            for tr, te in splits:
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

