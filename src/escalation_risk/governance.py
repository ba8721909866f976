"""The governance index: five measurable dimensions per grid, town or district and period.

The offices that use this library report upward on five dimensions (风险感知 risk
perception, 闭环处置 closed-loop handling, 治理效能 effectiveness, 公众参与 public
participation, 社会评议 public evaluation). Each is built here from the district's
data and the alert store as one ratio, ``numerator / denominator``, over records that
are each assigned to one unit (through the incident's place: its grid, town or
district) and one period (``pandas`` period code, ``"M"`` by default):

=================  ==========================================  =============================  ===============
indicator          a record (its period)                       counts in the numerator when   0-100 score
=================  ==========================================  =============================  ===============
risk_perception    a dispute that escalated (the month of      an alert on it was raised      100 x share
                   its first crime)                            before that crime
closed_loop        an alert whose due time has passed by       it was handled (resolved or    100 x share
                   ``as_of`` (the month it was raised)         escalated) by its due time
effectiveness      a dispute reported (its report month) at    it escalated within            100 - rate / 2,
                   least ``horizon_days`` before ``as_of``     ``horizon_days`` of its report rate per 1,000
                                                                                              (floor 0)
participation      a dispute reported (its report month)       residents brought it: source   100 x share
                                                               hotline_12345, walk_in or
                                                               grid_worker
evaluation         a mediation whose outcome is known (the     agreement 1, partial 0.5,      100 x value
                   month of the outcome)                       failed 0
=================  ==========================================  =============================  ===============

A dispute *escalated* when a criminal case occurred after the dispute was reported and
no later than ``horizon_days`` (90) after it was closed (any time while it is open),
and either shares a person party with it (on the canonical person key, both parties on
record by then) or names it in ``related_incident_id``: the contract's label rule
(:func:`escalation_risk.labels.escalating_crimes`), stretched over the dispute's whole
open life, and counted only once known (the crime reported and the party on it by
``as_of``). Effectiveness counts only disputes whose ``horizon_days`` after the report have
passed by ``as_of``, so a recent period is "not enough data" rather than flattered by
crimes that have not happened yet (the contract's label at report time).

Each indicator carries ``detail`` figures that are not scored: the median lead time
from the first alert to the crime (risk perception); alerts overdue at ``as_of`` and
follow-ups done among alerts resolved or escalated (closed loop); repeat disputes
between the same two people (effectiveness). The contract holds no satisfaction
survey, so public evaluation rests on mediation outcomes alone.

Risk perception counts only crimes after the alert store's first recorded night: before
it no alert could have been raised.

A ratio whose denominator is below ``min_denominator`` (10) is reported as
``"not enough data"``, without value or score. The composite is the weighted mean of
the dimensions that have a score (weights in ``WEIGHTS``: 0.25, 0.25, 0.20, 0.15,
0.15), re-normalised over them, and only when those carry at least half the weight.
``change`` is the score minus the same unit's score in the period before.

Only what was known at ``as_of`` counts: incidents reported, alert events and
mediation outcomes recorded by then (the alert's current due time is used).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .alerts import AlertStore
from .clock import to_moment
from .dataset import Dataset
from .known import known_incidents, known_parties
from .labels import DEFAULT_HORIZON_DAYS, data_end, escalating_crimes
from .linking import link_persons

__all__ = [
    "INDICATORS", "WEIGHTS", "RESIDENT_SOURCES", "MIN_DENOMINATOR", "NOT_ENOUGH_DATA", "UNITS",
    "governance_index", "escalations",
]

UNITS = ("grid", "town", "district")
_UNIT_COLUMN = {"grid": "grid_id", "town": "town", "district": "district"}
UNKNOWN_UNIT = "(unknown)"

#: indicator -> (Chinese name, English name), in reporting order.
INDICATORS: dict[str, tuple[str, str]] = {
    "risk_perception": ("风险感知", "risk perception"),
    "closed_loop": ("闭环处置", "closed-loop handling"),
    "effectiveness": ("治理效能", "effectiveness"),
    "participation": ("公众参与", "public participation"),
    "evaluation": ("社会评议", "public evaluation"),
}
COMPOSITE = ("composite", ("综合指数", "composite index"))

#: Composite weights; they sum to 1.
WEIGHTS: dict[str, float] = {"risk_perception": 0.25, "closed_loop": 0.25, "effectiveness": 0.20,
                             "participation": 0.15, "evaluation": 0.15}
#: Sources that mean residents brought the dispute forward themselves.
RESIDENT_SOURCES = ("hotline_12345", "walk_in", "grid_worker")
MIN_DENOMINATOR = 10
NOT_ENOUGH_DATA = "not enough data"
NO_STORE = "no alert store"
#: Effectiveness: escalations per 1,000 disputes at which the score reaches 0.
EFFECTIVENESS_ZERO_AT = 200.0
_HANDLED = ("resolved", "escalated")
_FOLLOWED = ("follow_up", "closed")

COLUMNS = ["by", "unit", "period", "indicator", "name_zh", "name_en", "numerator", "denominator", "value",
           "score", "change", "status", "detail"]


def _units(ds: Dataset, by: str) -> pd.Series:
    """incident_id -> unit, through the incident's place."""
    col = _UNIT_COLUMN[by]
    places = ds.places.set_index("place_id")[col].astype(object)
    inc = ds.incidents
    unit = inc["place_id"].astype(object).map(places)
    unit = unit.where(unit.notna(), UNKNOWN_UNIT)
    return pd.Series(unit.to_numpy(dtype=object), index=inc["incident_id"].astype(object).to_numpy())


def escalations(ds: Dataset, *, as_of=None, horizon_days: int = DEFAULT_HORIZON_DAYS) -> pd.DataFrame:
    """Disputes that escalated by ``as_of``: dispute_id and the first crime's crime_id, occurred_at.

    The label's rule (:func:`escalation_risk.labels.escalating_crimes`) over the
    dispute's open life (window: from its report to ``horizon_days`` after its closing
    as known at ``as_of``), counting only escalations known by ``as_of``: the crime
    reported and the shared party on both records by then.
    """
    t = _moment(ds, as_of)
    horizon = pd.Timedelta(days=horizon_days)
    # The disputes as known at t: a closing recorded later is not yet known (still open).
    inc = known_incidents(ds.incidents, t)
    disputes = inc[(inc["kind"] == "dispute").to_numpy()]
    closed = disputes["closed_at"].to_numpy(dtype="datetime64[ns]")
    until = np.where(np.isnat(closed), np.datetime64(pd.Timestamp.max.floor("D")), closed + horizon.to_timedelta64())
    pts = pd.DataFrame({"dispute_id": disputes["incident_id"].to_numpy(dtype=object),
                        "as_of": disputes["reported_at"].to_numpy(dtype="datetime64[ns]"), "until": until})
    h = escalating_crimes(ds, pts, horizon_days=horizon_days)
    h = h[((h["known_at"] <= t) & (h["occurred_at"] <= t)).to_numpy()]
    h = h.assign(dispute_id=pts["dispute_id"].to_numpy()[h["pt"].to_numpy()])
    m = h.sort_values(["dispute_id", "occurred_at", "crime_id"]).drop_duplicates("dispute_id")
    cols = ["dispute_id", "crime_id", "occurred_at"]
    return m[cols].reset_index(drop=True)


def _moment(ds: Dataset, as_of: Any) -> pd.Timestamp:
    """``as_of`` by the one moment rule (a date: the end of that day); None: the data's end."""
    return data_end(ds) if as_of is None else to_moment(as_of, what="as_of")


def _status_at(events: pd.DataFrame, t: pd.Timestamp) -> pd.DataFrame:
    """Per alert: the status at ``t``, when it was first handled and first followed up (by ``t``)."""
    ev = events[events["at"] <= t].sort_values(["alert_id", "at", "event_id"])
    last = ev.groupby("alert_id")["to_status"].last().rename("status_then")
    handled = ev[ev["to_status"].isin(_HANDLED)].groupby("alert_id")["at"].min().rename("handled_at")
    followed = ev[ev["to_status"].isin(_FOLLOWED)].groupby("alert_id")["at"].min().rename("followed_at")
    return pd.concat([last, handled, followed], axis=1)


def _records(ds: Dataset, store: AlertStore | None, by: str, freq: str, t: pd.Timestamp,
             horizon_days: int) -> dict[str, pd.DataFrame | None]:
    """Per indicator, one row per record: unit, period, hit (0..1) and extra figures."""
    units = _units(ds, by)
    inc = ds.incidents[ds.incidents["reported_at"] <= t]
    d_known = set(inc["incident_id"].astype(object))
    disputes = inc[inc["kind"] == "dispute"]
    d_ids = disputes["incident_id"].astype(object).to_numpy()
    esc = escalations(ds, as_of=t, horizon_days=horizon_days)
    horizon = pd.Timedelta(days=horizon_days)
    reported = disputes["reported_at"]
    first_crime = esc.set_index("dispute_id")["occurred_at"]
    # reindex, not map: Series.map over an empty datetime Series fails in pandas.
    crime_at = first_crime.reindex(d_ids).to_numpy(dtype="datetime64[ns]")
    escalated = crime_at <= (reported + horizon).to_numpy()   # NaT compares False
    d_period = reported.dt.to_period(freq).to_numpy()
    out: dict[str, pd.DataFrame | None] = {}

    settled = (reported + horizon <= t).to_numpy()
    out["effectiveness"] = pd.DataFrame({"unit": units.loc[d_ids].to_numpy()[settled], "period": d_period[settled],
                                         "hit": escalated[settled].astype(float),
                                         "repeat": _repeat_disputes(ds, disputes, t)[settled].astype(float)})
    resident = disputes["source"].astype(object).isin(RESIDENT_SOURCES).to_numpy()
    out["participation"] = pd.DataFrame({"unit": units.loc[d_ids].to_numpy(), "period": d_period,
                                         "hit": resident.astype(float)})

    med = ds.mediations
    med_at = med["outcome_at"].fillna(med["held_at"]) if "outcome_at" in med.columns else med["held_at"]
    known = (med_at <= t) & med["outcome"].astype(object).isin(["agreement", "partial", "failed"])
    known &= med["incident_id"].astype(object).isin(d_known)
    mk = med[known]
    value = mk["outcome"].astype(object).map({"agreement": 1.0, "partial": 0.5, "failed": 0.0})
    out["evaluation"] = pd.DataFrame({"unit": units.loc[mk["incident_id"].astype(object)].to_numpy(),
                                      "period": med_at[known].dt.to_period(freq).to_numpy(),
                                      "hit": value.to_numpy(dtype=float)})

    if store is None:
        out["risk_perception"] = out["closed_loop"] = None
        return out
    alerts = store.alerts()
    alerts = alerts[alerts["raised_at"] <= t]
    first_alert = alerts.groupby("dispute_id")["raised_at"].min()
    # Before the store's first night no alert could exist: those crimes say nothing about it.
    runs = store.runs()
    started = runs["as_of"].min() if len(runs) else pd.Timestamp.max
    esc = esc[esc["occurred_at"] > started]
    e = esc.assign(first_alert=first_alert.reindex(esc["dispute_id"].astype(str)).to_numpy(dtype="datetime64[ns]"))
    before = (e["first_alert"] < e["occurred_at"]).to_numpy()
    lead = (e["occurred_at"] - e["first_alert"]).dt.total_seconds().to_numpy() / 86400.0
    out["risk_perception"] = pd.DataFrame({"unit": units.loc[e["dispute_id"]].to_numpy(),
                                           "period": e["occurred_at"].dt.to_period(freq).to_numpy(),
                                           "hit": before.astype(float), "lead_days": np.where(before, lead, np.nan)})

    st = _status_at(store.events(), t)
    a = alerts.join(st, on="alert_id")
    a_unit = a["dispute_id"].astype(object).map(units).fillna(UNKNOWN_UNIT).to_numpy()
    due = (a["due_at"] <= t).to_numpy()
    on_time = (a["handled_at"] <= a["due_at"]).to_numpy()
    overdue = (a["status_then"].isin(["raised", "assigned", "in_progress"]) & (a["due_at"] < t)).to_numpy()
    handled = a["handled_at"].notna().to_numpy()
    followed = a["followed_at"].notna().to_numpy()
    out["closed_loop"] = pd.DataFrame({
        "unit": a_unit[due], "period": a["raised_at"].dt.to_period(freq).to_numpy()[due],
        "hit": on_time[due].astype(float), "overdue": overdue[due].astype(float),
        "handled": handled[due].astype(float), "followed": followed[due].astype(float)})
    return out


def _repeat_disputes(ds: Dataset, disputes: pd.DataFrame, t: pd.Timestamp) -> np.ndarray:
    """Per dispute (in ``disputes``' order): do two of its people share an earlier dispute
    (the parties on record by ``t``)?"""
    key = link_persons(ds)
    ids = disputes["incident_id"].astype(object)
    p = known_parties(ds.incident_parties, ds.incidents, t)
    p = p[(p["party_type"] == "person") & p["incident_id"].astype(object).isin(ids)]
    p = pd.DataFrame({"d": p["incident_id"].astype(object).to_numpy(),
                      "person": p["party_id"].astype(object).map(key).to_numpy()}).dropna().drop_duplicates()
    pairs = p.merge(p, on="d")
    pairs = pairs[pairs["person_x"] < pairs["person_y"]]
    when = pd.Series(disputes["reported_at"].to_numpy(), index=ids.to_numpy())
    pairs = pairs.assign(t=when.reindex(pairs["d"].to_numpy()).to_numpy()).sort_values(["t", "d"])
    first = pairs.groupby(["person_x", "person_y"])["t"].transform("min")
    repeat = set(pairs.loc[pairs["t"] > first, "d"])
    return ids.isin(repeat).to_numpy()


def _score(indicator: str, value: float) -> float:
    if indicator == "effectiveness":
        return float(max(0.0, 100.0 - 100.0 * value / EFFECTIVENESS_ZERO_AT))
    return 100.0 * value


def _aggregate(name: str, rec: pd.DataFrame, min_n: int) -> pd.DataFrame:
    g = rec.groupby(["unit", "period"], sort=True)
    agg = g["hit"].agg(["sum", "count"]).rename(columns={"sum": "numerator", "count": "denominator"})
    ratio = agg["numerator"] / agg["denominator"]
    agg["value"] = ratio * 1000.0 if name == "effectiveness" else ratio
    extra: dict[str, pd.Series] = {}
    if name == "risk_perception":
        extra["median_lead_days"] = g["lead_days"].median().round(1)
    elif name == "closed_loop":
        extra["overdue"] = g["overdue"].sum()
        extra["handled"] = g["handled"].sum()
        extra["followed_up"] = g["followed"].sum()
    elif name == "effectiveness":
        extra["repeat_disputes"] = g["repeat"].sum()
    ok = agg["denominator"] >= min_n
    agg["status"] = np.where(ok, "ok", NOT_ENOUGH_DATA)
    agg.loc[~ok, "value"] = np.nan
    agg["score"] = [(_score(name, v) if np.isfinite(v) else np.nan) for v in agg["value"]]
    # Plain arrays: .loc per row on a MultiIndex costs seconds over thousands of unit-periods.
    cols = {k: v.reindex(agg.index).to_numpy() for k, v in extra.items()}
    agg["detail"] = [{k: _plain(cols[k][i]) for k in cols} for i in range(len(agg))]
    agg = agg.reset_index()
    agg["indicator"] = name
    return agg


def _plain(v: Any) -> Any:
    if isinstance(v, (np.integer, np.floating)):
        v = v.item()
    if isinstance(v, float):
        return None if not np.isfinite(v) else (int(v) if v.is_integer() else v)
    return v


def _composite(long: pd.DataFrame, w: Mapping[str, float]) -> pd.DataFrame:
    """The weighted mean of each unit-period's scored dimensions (see the module docstring)."""
    if long.empty:
        return long.iloc[:0]
    wide = long.set_index(["unit", "period", "indicator"])["score"].unstack("indicator")
    names = [k for k in INDICATORS if k in wide.columns]
    S = wide[names].to_numpy(dtype=float)
    W = np.array([w.get(k, 0.0) for k in names])
    present = np.isfinite(S)
    have = (present * W).sum(axis=1)
    ok = (have >= 0.5 * sum(w.values())) & (have > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(ok, (np.nan_to_num(S) * W).sum(axis=1) / have, np.nan)
    detail = [{"dimensions": [k for k, p in zip(names, row) if p], "weight_present": round(float(h), 4)}
              for row, h in zip(present, have)]
    keys = wide.index.to_frame(index=False)
    return keys.assign(indicator=COMPOSITE[0], numerator=np.nan, denominator=np.nan, value=np.nan, score=score,
                       status=np.where(ok, "ok", NOT_ENOUGH_DATA), detail=detail)


def governance_index(ds: Dataset, store: AlertStore | str | None = None, *, by: str = "grid",
                     period: str = "M", as_of: Any = None, min_denominator: int = MIN_DENOMINATOR,
                     horizon_days: int = DEFAULT_HORIZON_DAYS, weights: Mapping[str, float] | None = None
                     ) -> pd.DataFrame:
    """The five indicators and the composite per unit and period, as known at ``as_of``.

    One row per (unit, period, indicator) with ``numerator``, ``denominator``,
    ``value`` (a share; escalations per 1,000 disputes for effectiveness), ``score``
    (0-100), ``change`` (score minus the previous period's), ``status`` (``"ok"``,
    ``"not enough data"`` or ``"no alert store"``) and ``detail`` (a dict of unscored
    figures). ``store`` is an :class:`AlertStore` or its URL; without one the two
    store-based dimensions say so. See the module docstring for every definition.
    """
    if by not in UNITS:
        raise ValueError(f"by: expected one of {UNITS}, got {by!r}")
    try:
        pd.Period("2024-01-01", freq=period)
    except ValueError as e:
        raise ValueError(f"period: not a pandas period code: {period!r} ({e})") from None
    if min_denominator < 1:
        raise ValueError(f"min_denominator: expected an integer >= 1, got {min_denominator!r}")
    w = dict(WEIGHTS if weights is None else weights)
    unknown = set(w) - set(INDICATORS)
    if unknown or any(v < 0 for v in w.values()) or not sum(w.values()) > 0:
        raise ValueError(f"weights: expected non-negative weights of {list(INDICATORS)}, got {w}")
    t = _moment(ds, as_of)
    st = AlertStore(store) if isinstance(store, str) else store
    recs = _records(ds, st, by, period, t, horizon_days)

    parts = [(_aggregate(name, rec, min_denominator) if rec is not None else None)
             for name, rec in recs.items()]
    found = [p for p in parts if p is not None and len(p)]
    keys = (pd.concat([p[["unit", "period"]] for p in found]).drop_duplicates() if found
            else pd.DataFrame({"unit": pd.Series([], dtype=object), "period": pd.Series([], dtype=object)}))
    rows = []
    for name, part in zip(recs, parts):
        if part is None:
            part = keys.assign(indicator=name, numerator=np.nan, denominator=np.nan, value=np.nan,
                               score=np.nan, status=NO_STORE, detail=[{} for _ in range(len(keys))])
        else:
            # A unit with no record for this indicator in a period has a zero denominator.
            part = keys.merge(part, on=["unit", "period"], how="left")
            empty = part["denominator"].isna()
            part.loc[empty, ["numerator", "denominator"]] = 0
            part.loc[empty, "status"] = NOT_ENOUGH_DATA
            part["detail"] = [d if isinstance(d, dict) else {} for d in part["detail"]]
            part["indicator"] = name
        rows.append(part)
    long = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=COLUMNS)

    comp = _composite(long, w)
    long = pd.concat([long, comp], ignore_index=True) if len(comp) else long
    names = {**INDICATORS, COMPOSITE[0]: COMPOSITE[1]}
    order = {k: i for i, k in enumerate(names)}
    long["name_zh"] = long["indicator"].map(lambda k: names[k][0])
    long["name_en"] = long["indicator"].map(lambda k: names[k][1])
    long["by"] = by
    long = long.sort_values(["unit", "period", "indicator"], key=lambda s: s.map(order) if s.name == "indicator"
                            else s).reset_index(drop=True)
    prev = long.assign(period=long["period"] + 1)[["unit", "period", "indicator", "score"]]
    long = long.merge(prev.rename(columns={"score": "previous"}), on=["unit", "period", "indicator"], how="left")
    long["change"] = long["score"] - long["previous"]
    for c in ("numerator", "denominator", "value", "score", "change"):
        long[c] = long[c].astype(float)
    return long[COLUMNS]
