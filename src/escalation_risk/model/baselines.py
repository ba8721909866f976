"""The baselines a model must beat: a DASH/ODARA-style checklist and a logistic regression."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ..features import CATEGORICAL, REGISTRY
from .calibration import _sigmoid

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


def checklist_items(X: pd.DataFrame, items: list[dict] = CHECKLIST_ITEMS) -> pd.DataFrame:
    """Yes (1) / no (0) per checklist item and row; a missing feature value counts as no."""
    out = {}
    for it in items:
        yes = np.zeros(len(X), dtype=bool)
        for alt in it["any_of"]:
            ok = np.ones(len(X), dtype=bool)
            for feat, minimum in alt:
                if feat not in X.columns:  # e.g. a text signal a custom lexicon removed: no
                    ok[:] = False
                    continue
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


def _numeric(num: np.ndarray, spec: dict) -> np.ndarray:
    """The numeric block of the design: median-imputed, log1p, standardised, clipped."""
    med = np.asarray(spec["median"])
    num = np.where(np.isnan(num), med, num)
    if spec.get("log1p"):
        num = np.sign(num) * np.log1p(np.abs(num))
    num = (num - np.asarray(spec["mean"])) / np.asarray(spec["scale"])
    if spec.get("clip"):
        num = np.clip(num, -spec["clip"], spec["clip"])
    return num


def _design(X: pd.DataFrame, spec: dict) -> np.ndarray:
    """The logistic regression's matrix: median-imputed standardised numbers, one-hot categories."""
    parts = [_numeric(X[spec["numeric"]].to_numpy(dtype=float), spec)]
    for col, cats in spec["categories"].items():
        v = X[col].astype(object).to_numpy()
        parts.append((v[:, None] == np.asarray(cats, dtype=object)[None, :]).astype(float))
    return np.hstack(parts)


def _fit_logistic(X: pd.DataFrame, y: np.ndarray, seed: int) -> dict:
    numeric = [c for c in X.columns if c not in CATEGORICAL and c not in ("dispute_id", "as_of")]
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
            # Only the category columns given: a model trained without a family (``exclude``) has fewer.
            "categories": {c: list(REGISTRY[c].categories or ()) for c in CATEGORICAL if c in X.columns}, **LR_OPTS}
    lr = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(_design(X, spec), y)
    spec["coef"] = lr.coef_[0].tolist()
    spec["intercept"] = float(lr.intercept_[0])
    return spec


def logistic_layout(names: list[str], spec: dict) -> tuple[np.ndarray, list[tuple[int, int]], np.ndarray]:
    """Where the logistic regression's inputs sit in a matrix of columns ``names``: the
    numeric columns' positions, each category column's (position, number of categories),
    and the coefficients as an array. Made once per model (:class:`RiskModel` keeps it),
    not once per scored row."""
    pos = {n: j for j, n in enumerate(names)}
    missing = [c for c in [*spec["numeric"], *spec["categories"]] if c not in pos]
    if missing:
        raise ValueError(f"the logistic regression reads feature(s) {missing[:5]} the matrix lacks")
    idx = np.asarray([pos[c] for c in spec["numeric"]], dtype=np.intp)
    cats = [(pos[col], len(values)) for col, values in spec["categories"].items()]
    return idx, cats, np.asarray(spec["coef"], dtype=float)


def logistic_terms(M: np.ndarray, names: list[str], spec: dict,
                   layout: tuple[np.ndarray, list[tuple[int, int]], np.ndarray] | None = None) -> np.ndarray:
    """Each feature's term in the logistic regression's log-odds, per row of ``M`` (the
    model's matrix: columns ``names``, categoricals as codes in the spec's category order,
    unknown NaN). A row's terms plus ``spec["intercept"]`` are its log-odds; the numbers
    are centred (a feature at its training mean adds nothing), so they read as reasons.
    ``layout``: :func:`logistic_layout` of ``names`` and ``spec``, when the caller keeps it."""
    idx, cats, coef = layout if layout is not None else logistic_layout(names, spec)
    out = np.zeros(M.shape, dtype=float)
    k = len(idx)
    out[:, idx] = _numeric(np.asarray(M[:, idx], dtype=float), spec) * coef[:k]
    for j, n_cats in cats:
        code = M[:, j]
        known = ~np.isnan(code) & (code >= 0) & (code < n_cats)
        out[known, j] = coef[k + code[known].astype(int)]
        k += n_cats
    return out


def _logistic_proba(X: pd.DataFrame, spec: dict) -> np.ndarray:
    z = _design(X, spec) @ np.asarray(spec["coef"]) + spec["intercept"]
    return _sigmoid(z)

