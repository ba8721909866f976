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


def example_points(ds: Dataset, *, every_days: int | None, max_rescores: int, until) -> pd.DataFrame:
    """Training examples: disputes at report time, plus later moments while still open."""
    base = report_points(ds)
    if not every_days:
        return base
    inc = ds.incidents.set_index("incident_id")
    closed = inc.loc[base["dispute_id"], "closed_at"].to_numpy(dtype="datetime64[ns]")
    k = np.arange(max_rescores + 1)
    rep = np.repeat(base["as_of"].to_numpy(dtype="datetime64[ns]"), len(k))
    ids = np.repeat(base["dispute_id"].to_numpy(dtype=object), len(k))
    cl = np.repeat(closed, len(k))
    as_of = rep + np.tile(k, len(base)) * np.timedelta64(every_days, "D")
    keep = open_at(rep, cl, as_of) & (as_of <= np.datetime64(to_moment(until, what="until")))
    keep |= np.tile(k == 0, len(base))
    return pd.DataFrame({"dispute_id": ids[keep], "as_of": as_of[keep]}).reset_index(drop=True)

