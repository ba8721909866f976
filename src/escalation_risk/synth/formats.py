"""How the generator writes ids and times into the tables."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _fmt_ids(prefix: str, n: int, width: int) -> np.ndarray:
    """``prefix`` and 1..n zero-padded to ``width``."""
    s = pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(width)
    return (prefix + s).to_numpy(dtype=object)


def _days_to_ts(t0: np.datetime64, days: np.ndarray) -> np.ndarray:
    """Days from ``t0`` as timestamps to the second (NaN and inf: NaT)."""
    days = np.asarray(days, dtype=float)
    ok = np.isfinite(days)
    sec = np.where(ok, np.round(np.where(ok, days, 0) * 86400), 0).astype(np.int64)
    out = t0 + sec.astype("timedelta64[s]")
    out = out.astype("datetime64[us]")
    out[~ok] = np.datetime64("NaT")
    return out
