"""Thresholds that give every group of a chosen attribute the same false-positive rate.

One threshold for everyone alerts the top share of disputes; a group whose disputes
score higher for reasons unrelated to escalation then carries more false alarms. The
alternative here keeps the alert budget (the same share of all disputes alerted) but
sets one threshold per group so that the share of each group's *non-escalated*
disputes that are alerted is the same. It is fitted on the out-of-time validation
predictions (never on the disputes it is judged on) and costs precision: the table
of :func:`equalised_comparison` shows how much, beside the false-positive rates.

:func:`fairness_comparison` sets models side by side (e.g. with and without the personal
attributes) per group at one threshold. Both tables take their intervals from
:func:`escalation_risk.model.metrics.paired_bootstrap`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import _fast_auc, group_attributes, paired_bootstrap

# The attributes a group can be drawn from (columns of metrics.group_attributes).
GROUP_ATTRIBUTES = ("gender", "hukou", "age_band", "dispute_category")


def group_of(X: pd.DataFrame, attribute: str) -> np.ndarray:
    """Each row's group for ``attribute`` (from its features; no personal data)."""
    if attribute not in GROUP_ATTRIBUTES:
        raise ValueError(f"equalise_fpr: unknown attribute {attribute!r}; choose one of {list(GROUP_ATTRIBUTES)}")
    return group_attributes(X)[attribute].astype(str).to_numpy()


def _group_thresholds(neg: dict[str, np.ndarray], fpr: float) -> dict[str, float]:
    # The lowest threshold alerting at most ``fpr`` of the group's non-escalated disputes.
    out = {}
    for g, s in neg.items():
        k = int(np.floor(fpr * len(s)))  # how many negatives may be alerted
        out[g] = float(s[-k]) if k > 0 else float(np.nextafter(s[-1], np.inf))
    return out


def equal_fpr_thresholds(p: np.ndarray, y: np.ndarray, groups: np.ndarray, *, budget: float = 0.05,
                         attribute: str = "group", min_negatives: int = 20) -> dict:
    """Per-group thresholds with one false-positive rate for every group and ``budget``
    of all disputes alerted (as near as the ties allow).

    The rate is found by bisection: a higher common rate lowers every group's threshold,
    so the alerted share grows with it. A group with fewer than ``min_negatives``
    non-escalated disputes (its rate would be noise) keeps the single threshold, as does
    a group never seen here when the thresholds are applied. Returns a plain dict:
    ``attribute``, ``budget``, ``fpr`` (the common rate), ``thresholds`` per group,
    ``single`` (the one threshold alerting ``budget``) and ``groups_kept_single``.
    """
    p, y, groups = np.asarray(p, dtype=float), np.asarray(y, dtype=int), np.asarray(groups, dtype=object)
    if not 0 < budget < 1:
        raise ValueError(f"budget must be between 0 and 1, got {budget}")
    if len(p) != len(y) or len(p) != len(groups):
        raise ValueError(f"p, y and groups differ in length ({len(p)}, {len(y)}, {len(groups)})")
    single = float(np.quantile(p, 1.0 - budget))
    neg = {str(g): np.sort(p[(groups == g) & (y == 0)]) for g in pd.unique(groups)}
    small = sorted(g for g, s in neg.items() if len(s) < min_negatives)
    neg = {g: s for g, s in neg.items() if g not in small}
    if not neg:
        raise ValueError(f"equalise_fpr: no {attribute} group has {min_negatives} non-escalated disputes")
    fixed = np.isin(groups.astype(str), small)
    fixed_alerts = int((p[fixed] >= single).sum())
    target = budget * len(p)

    def alerts(fpr: float) -> int:
        th = _group_thresholds(neg, fpr)
        return fixed_alerts + sum(int((p[groups.astype(str) == g] >= t).sum()) for g, t in th.items())

    lo, hi = 0.0, 1.0
    for _ in range(40):  # the alerted count is monotone in the rate
        mid = (lo + hi) / 2
        if alerts(mid) > target:
            hi = mid
        else:
            lo = mid
    fpr = lo
    th = _group_thresholds(neg, fpr)
    th.update({g: single for g in small})
    return {"attribute": attribute, "budget": float(budget), "fpr": float(fpr), "thresholds": th,
            "single": single, "groups_kept_single": small, "alerted_share": alerts(fpr) / len(p)}


def equalised_alerts(p: np.ndarray, groups: np.ndarray, spec: dict) -> np.ndarray:
    """Which rows the per-group thresholds of ``spec`` alert (an unseen group: the single one)."""
    th = spec["thresholds"]
    t = np.array([th.get(str(g), spec["single"]) for g in groups], dtype=float)
    return np.asarray(p, dtype=float) >= t


def _precision_fpr(y: np.ndarray, alert: np.ndarray, member: np.ndarray) -> tuple[float, float]:
    # A group's precision (of its alerts) and false-positive rate (the share of its
    # non-escalated disputes alerted); NaN where the group has no alert, or no negative.
    hit, neg = member & alert, member & (y == 0)
    return (float(y[hit].mean()) if hit.any() else np.nan, float(alert[neg].mean()) if neg.any() else np.nan)


def equalised_comparison(p: np.ndarray, y: np.ndarray, groups: np.ndarray, spec: dict, *,
                         n_boot: int = 200, seed: int = 0, single: float | None = None) -> pd.DataFrame:
    """One threshold against the equalised thresholds of ``spec`` on the same disputes:
    per rule, overall and per group, the share alerted, the precision of the alerts and the
    false-positive rate, with percentile bootstrap 95% intervals (thresholds held fixed,
    disputes resampled). ``single``: the one threshold (default: ``spec["single"]``, the
    one fitted with the equalised ones; pass the top-``budget`` quantile of ``p`` to
    compare at exactly the budget on these disputes). The row ``all`` of each rule gives
    the cost in precision."""
    p, y, groups = np.asarray(p, dtype=float), np.asarray(y, dtype=int), np.asarray(groups, dtype=object).astype(str)
    rules = {"one threshold": p >= (spec["single"] if single is None else single),
             "equalised false-positive rate": equalised_alerts(p, groups, spec)}
    cells = [("all", np.ones(len(y), bool))] + [(g, groups == g) for g in sorted(pd.unique(groups))]

    def figures(idx: np.ndarray) -> dict:
        out = {}
        yb = y[idx]
        for rule, alert in rules.items():
            ab = alert[idx]
            for g, m in cells:
                mb = m[idx]
                out[(rule, g)] = (float(ab[mb].mean()) if mb.any() else np.nan, *_precision_fpr(yb, ab, mb))
        return out

    masks = dict(cells)
    rows = []
    for (rule, g), ((share, prec, fpr), lo, hi) in paired_bootstrap(figures, len(y), n_boot=n_boot,
                                                                    seed=seed).items():
        m = masks[g]
        rows.append({"rule": rule, "group": g, "n": int(m.sum()), "escalated": int(y[m].sum()),
                     "alerted": share, "alerted_lo": lo[0], "alerted_hi": hi[0],
                     "precision": prec, "precision_lo": lo[1], "precision_hi": hi[1],
                     "fpr": fpr, "fpr_lo": lo[2], "fpr_hi": hi[2]})
    return pd.DataFrame(rows)


def fairness_comparison(scores: dict[str, np.ndarray], y: np.ndarray, groups: pd.DataFrame, *,
                        budget: float = 0.05, n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """AUC, precision and false-positive rate at the alert budget, overall and per group,
    for each scorer in ``scores`` (e.g. the model with and without the personal
    attributes) on the same disputes ``y``, with percentile bootstrap 95% intervals.

    The budget alerts the top ``budget`` share of all disputes (one threshold for every
    group, re-drawn in each resample); a group's precision is that of its alerts and its
    false-positive rate the share of its non-escalated disputes alerted. ``groups``: one
    column per attribute (:func:`escalation_risk.model.metrics.group_attributes`)."""
    y = np.asarray(y, dtype=int)
    cells = [("all", "all", np.ones(len(y), bool))]
    for attr in groups.columns:
        g = groups[attr].astype(str).to_numpy()
        cells += [(attr, k, g == k) for k in pd.unique(g)]

    def figures(idx: np.ndarray) -> dict:
        out = {}
        for name, s in scores.items():
            sb, yb = np.asarray(s)[idx], y[idx]
            alert = sb >= np.quantile(sb, 1 - budget)
            for attr, k, m in cells:
                mb = m[idx]
                out[(name, attr, k)] = (_fast_auc(yb[mb], sb[mb]), *_precision_fpr(yb, alert, mb))
        return out

    masks = {(attr, k): m for attr, k, m in cells}
    rows = []
    for (name, attr, k), ((auc, prec, fpr), lo, hi) in paired_bootstrap(figures, len(y), n_boot=n_boot,
                                                                        seed=seed).items():
        m = masks[(attr, k)]
        rows.append({"model": name, "attribute": attr, "group": k, "n": int(m.sum()),
                     "escalated": int(y[m].sum()), "roc_auc": auc, "roc_auc_lo": lo[0], "roc_auc_hi": hi[0],
                     f"precision@{budget:.0%}": prec, "precision_lo": lo[1], "precision_hi": hi[1],
                     f"fpr@{budget:.0%}": fpr, "fpr_lo": lo[2], "fpr_hi": hi[2]})
    return pd.DataFrame(rows)
