"""The population stability index (PSI): one function for the ``drift`` command and the plots.

``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)`` over bins ``i``, with ``e`` the reference's
and ``a`` the recent sample's share in each bin. Numeric values are cut at the
reference's deciles (``BINS`` bins, ties merged), categorical ones bin by category, and
missing values are a bin of their own; a share of 0 is taken as ``EPSILON`` (1e-4) so
that an empty bin does not give infinity. Numpy and pandas only, so that the plots can
use it without loading the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["psi", "psi_from_counts", "histograms", "EPSILON", "BINS"]

EPSILON = 1e-4
BINS = 10
_MISSING = "\0missing"


def psi_from_counts(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """PSI between two histograms over the same bins (counts or shares)."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.shape != a.shape or e.ndim != 1 or len(e) == 0:
        raise ValueError(f"expected and actual must be histograms over the same bins, got {e.shape} and {a.shape}")
    if e.sum() <= 0 or a.sum() <= 0:
        raise ValueError("expected and actual must each hold at least one count")
    e = np.maximum(e / e.sum(), EPSILON)
    a = np.maximum(a / a.sum(), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def histograms(reference: pd.Series, recent: pd.Series, categorical: bool, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Histograms of both series over bins taken from the reference (missing: last bin)."""
    if categorical:
        ref = reference.astype(object).where(reference.notna(), _MISSING)
        cur = recent.astype(object).where(recent.notna(), _MISSING)
        cats = sorted(set(ref) | set(cur), key=str)
        return (ref.value_counts().reindex(cats, fill_value=0).to_numpy(float),
                cur.value_counts().reindex(cats, fill_value=0).to_numpy(float))
    r = pd.to_numeric(reference, errors="coerce").to_numpy(float)
    c = pd.to_numeric(recent, errors="coerce").to_numpy(float)
    finite = r[np.isfinite(r)]
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])) if len(finite) else np.zeros(0)

    def hist(x: np.ndarray) -> np.ndarray:
        ok = np.isfinite(x)
        h = np.bincount(np.searchsorted(edges, x[ok], side="right"), minlength=len(edges) + 1).astype(float)
        return np.append(h, float((~ok).sum()))

    return hist(r), hist(c)


def psi(reference: Sequence[Any] | pd.Series, recent: Sequence[Any] | pd.Series, *, categorical: bool = False,
        bins: int = BINS) -> float:
    """PSI of ``recent`` against ``reference``: numeric values cut at the reference's
    quantiles (``bins`` bins, ties merged), categories as they come; missing is a bin."""
    e, a = histograms(pd.Series(reference), pd.Series(recent), categorical, bins)
    return psi_from_counts(e, a)
