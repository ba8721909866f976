"""Which moments a dispute is scored at: report time, open nights, training examples."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..clock import end_of_day, to_moment
from ..dataset import Dataset
from ..known import open_at
from ..labels import DEFAULT_HORIZON_DAYS, data_end


def report_points(ds: Dataset, start=None, end=None) -> pd.DataFrame:
    """Every dispute at its report time, for disputes reported in ``[start, end]``.

    Dates by the one rule (:func:`escalation_risk.clock.to_moment`): ``start`` a date is
    the start of its day, ``end`` the end of its day, so both days named are inside."""
    inc = ds.incidents
    d = inc[inc["kind"] == "dispute"]
    keep = np.ones(len(d), dtype=bool)
    if start is not None:
        keep &= (d["reported_at"] >= to_moment(start, role="start", what="start")).to_numpy()
    if end is not None:
        keep &= (d["reported_at"] <= to_moment(end, what="end")).to_numpy()
    d = d[keep]
    return pd.DataFrame({"dispute_id": d["incident_id"].to_numpy(dtype=object),
                         "as_of": d["reported_at"].to_numpy(dtype="datetime64[ns]")})


def open_points(ds: Dataset, when) -> pd.DataFrame:
    """Every dispute open at ``when`` (a date: the end of that day): reported by then and not closed by then."""
    t = to_moment(when, what="when")
    inc = ds.incidents
    m = (inc["kind"] == "dispute") & open_at(inc["reported_at"], inc["closed_at"], t)
    d = inc[m]
    return pd.DataFrame({"dispute_id": d["incident_id"].to_numpy(dtype=object),
                         "as_of": np.full(len(d), t.to_datetime64()).astype("datetime64[ns]")})


def night_points(ds: Dataset, *, start, end=None, day: int = 10, horizon_days: int = DEFAULT_HORIZON_DAYS
                 ) -> pd.DataFrame:
    """Every dispute open on the night of day ``day`` of each month in [start, end], as the
    nightly job would score it: at the end of that day (the night of a date). ``end``
    defaults to the last night whose horizon is inside the data."""
    start = to_moment(start, role="start", what="start")
    end = to_moment(end, what="end") if end is not None else data_end(ds) - pd.Timedelta(days=horizon_days)
    months = pd.date_range(start.to_period("M").to_timestamp(), end, freq="MS")
    nights = [n for n in (end_of_day(m + pd.Timedelta(days=day - 1)) for m in months) if start <= n <= end]
    if not nights:
        raise ValueError(f"no night between {start:%Y-%m-%d} and {end:%Y-%m-%d}")
    return pd.concat([open_points(ds, n) for n in nights], ignore_index=True)


def example_points(ds: Dataset, *, every_days: int | None, max_rescores: int, until,
                   phase: str = "fixed") -> pd.DataFrame:
    """Training examples: disputes at report time, plus later moments while still open.

    ``phase="fixed"``: the k-th re-score ``k * every_days`` after the report. ``"spread"``:
    somewhere in the k-th period of ``every_days`` after it, at a point drawn from the
    dispute's id and k (the same for the same dispute in any data set), so the re-scores
    cover every age of an open dispute as the nights see it (a night falls on any day of a
    dispute's life), not only whole multiples of the period."""
    if phase not in ("fixed", "spread"):
        raise ValueError(f"phase must be 'fixed' or 'spread', got {phase!r}")
    base = report_points(ds)
    if not every_days:
        return base
    inc = ds.incidents.set_index("incident_id")
    closed = inc.loc[base["dispute_id"], "closed_at"].to_numpy(dtype="datetime64[ns]")
    k = np.arange(max_rescores + 1)
    rep = np.repeat(base["as_of"].to_numpy(dtype="datetime64[ns]"), len(k))
    ids = np.repeat(base["dispute_id"].to_numpy(dtype=object), len(k))
    cl = np.repeat(closed, len(k))
    kk = np.tile(k, len(base))
    period = np.timedelta64(every_days * 86_400_000_000_000, "ns")
    if phase == "fixed":
        as_of = rep + kk * period
    else:
        # A stable hash of (dispute, k), not a random stream: a dispute's points do not depend on the others.
        h = pd.util.hash_array(ids) ^ pd.util.hash_array(kk.astype(np.uint64))
        u = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)
        as_of = rep + (np.maximum(kk - 1, 0) * period) + (u * period / np.timedelta64(1, "ns")).astype(
            "timedelta64[ns]") * (kk > 0)
    keep = open_at(rep, cl, as_of) & (as_of <= np.datetime64(to_moment(until, what="until")))
    keep |= kk == 0
    return pd.DataFrame({"dispute_id": ids[keep], "as_of": as_of[keep]}).reset_index(drop=True)
