"""Reasons behind a score, from SHAP contributions.

LightGBM's ``pred_contrib`` splits each row's log-odds into one additive
contribution per feature plus a bias (TreeSHAP). A *reason* is a feature whose
contribution raises the risk: the top-k positive contributions of a row, each
turned into one plain sentence in English and Chinese (:mod:`.features.sentences`)
from the row's values: its own, and the few others a sentence needs (a total over
the parties is told per party from the maximum and the number of parties). Features that lower the risk are never
given as reasons: a warning explains what is worrying, not what is reassuring.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .features import REGISTRY
from .features.sentences import render


def top_reasons(contributions: pd.DataFrame | np.ndarray, X: pd.DataFrame | Mapping[str, Any], top: int = 3,
                *, names: Sequence[str] | None = None) -> list[list[dict]]:
    """For each row, up to ``top`` features with a positive contribution, strongest first.

    ``contributions`` has one column per feature (a ``bias`` column is ignored) and
    the rows of ``X``. Each reason is a dict: feature, value, contribution, en, zh.
    With ``names``, ``contributions`` is a bare array with those columns first and ``X``
    any mapping of feature name to values (one scored dispute: no frames to build).
    """
    if top <= 0 or len(contributions) == 0:
        return [[] for _ in range(len(contributions))]
    if names is None:
        assert isinstance(contributions, pd.DataFrame)
        names = [c for c in contributions.columns if c != "bias"]
        C = contributions[names].to_numpy(dtype=float)
    else:
        C = np.asarray(contributions, dtype=float)[:, :len(names)]
    k = min(top, C.shape[1])
    # One argsort over the whole matrix; only the sentences below loop, over the k reasons.
    order = np.argsort(-C, axis=1, kind="stable")[:, :k]
    vals = np.take_along_axis(C, order, axis=1)
    keep = vals > 0
    cols: dict[str, np.ndarray] = {}  # columns read on demand, once
    columns = list(X.columns) if isinstance(X, pd.DataFrame) else list(X)  # once, not per row
    out: list[list[dict]] = []
    for i in range(len(C)):
        reasons = []
        values = _Row(X, i, cols, columns)
        for j in np.flatnonzero(keep[i]):
            name = names[order[i, j]]
            value = values[name]
            reasons.append({"feature": name, "value": _plain(value), "contribution": float(vals[i, j]),
                            "en": render(name, values, "en"), "zh": render(name, values, "zh")})
        out.append(reasons)
    return out


class _Row(Mapping[str, Any]):
    """One row of ``X`` as a mapping, reading each column only when a sentence asks."""

    def __init__(self, X: pd.DataFrame | Mapping[str, Any], i: int, cols: dict[str, np.ndarray],
                 names: list[str] | None = None) -> None:
        self._X, self._i, self._cols = X, i, cols
        self._names = names if names is not None else list(X.columns) if isinstance(X, pd.DataFrame) else list(X)

    def __getitem__(self, name: str) -> Any:
        col = self._cols.get(name)
        if col is None:
            if name not in self._X:
                raise KeyError(name)
            col = self._cols[name] = np.asarray(self._X[name], dtype=object)
        return col[self._i]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _plain(value):
    """A JSON-friendly scalar (None for missing)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    return str(value)


def global_importance(contributions: pd.DataFrame) -> pd.DataFrame:
    """Mean |SHAP| per feature over the rows given, largest first, with its description."""
    names = [c for c in contributions.columns if c != "bias"]
    imp = np.abs(contributions[names].to_numpy(dtype=float)).mean(axis=0) if len(contributions) else \
        np.zeros(len(names))
    out = pd.DataFrame({"feature": names, "mean_abs_shap": imp,
                        "en": [REGISTRY[n].en for n in names], "zh": [REGISTRY[n].zh for n in names]})
    return out.sort_values("mean_abs_shap", ascending=False, kind="stable").reset_index(drop=True)


__all__ = ["top_reasons", "global_importance"]
