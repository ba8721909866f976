"""Labels: did a dispute scored at a moment turn into a crime within the horizon?

The default question (data contract, "The question the model answers"): the point
``(dispute_id, as_of)`` escalates when some ``criminal_case`` has
``as_of < occurred_at <= as_of + horizon`` and either shares a person party with
the dispute (any role, compared on the canonical person key from record linkage,
so one person under two ``person_id`` values still counts) or names the dispute in
``related_incident_id``. A party added to either record later (contract 1.1
``added_at``) counts once added by the end of the horizon (:func:`escalation_risk.known.added_by`).

A point whose horizon runs past the last record of the data is *unlabelled*
(NaN): the data cannot say whether a crime followed, and treating it as a
negative would teach the model that recent disputes are safe.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .contract import OFFENCE_CATEGORIES
from .dataset import Dataset
from .known import added_by, party_since
from .linking import link_persons

DEFAULT_HORIZON_DAYS = 90


def data_end(ds: Dataset) -> pd.Timestamp:
    """The last moment the data speaks for: the latest ``reported_at`` of any incident."""
    return pd.Timestamp(ds.incidents["reported_at"].max())


def _offences(offences: Iterable[str] | None) -> list[str] | None:
    if offences is None:
        return None
    offences = [offences] if isinstance(offences, str) else list(offences)
    unknown = sorted(set(offences) - set(OFFENCE_CATEGORIES))
    if unknown:
        raise ValueError(f"offences: unknown offence categories {unknown}; expected some of {list(OFFENCE_CATEGORIES)}")
    return offences


def escalating_crimes(ds: Dataset, points: pd.DataFrame, *, horizon_days: int = DEFAULT_HORIZON_DAYS,
                      offences: Iterable[str] | None = None, shared_party: bool = True) -> pd.DataFrame:
    """The one escalation rule: every criminal case that makes a point escalate, and when that became known.

    ``points`` has ``dispute_id`` and ``as_of`` and, optionally, ``until`` (the end of
    the window; default ``as_of + horizon``). A case counts for a point when
    ``as_of < occurred_at <= until`` and it names the dispute in
    ``related_incident_id`` or shares a person party with it (canonical person key),
    both parties on their incidents by ``until`` (:func:`escalation_risk.known.added_by`).

    One row per (point, case): ``pt`` (the point's position), ``crime_id``,
    ``occurred_at``, ``category`` and ``known_at``, the moment the escalation could be
    known: the case reported and, for a shared party, both parties on record
    (:func:`escalation_risk.known.party_since`). Labels, the case library, the governance
    index and the plan report all read escalation from here.
    """
    offences = _offences(offences)
    horizon = pd.Timedelta(days=horizon_days)
    pts = pd.DataFrame({"pt": np.arange(len(points)),
                        "dispute_id": points["dispute_id"].to_numpy(dtype=object),
                        "as_of": pd.to_datetime(points["as_of"]).to_numpy(dtype="datetime64[ns]")})
    pts["until"] = (pd.to_datetime(points["until"]).to_numpy(dtype="datetime64[ns]") if "until" in points
                    else pts["as_of"] + horizon)
    inc = ds.incidents
    crimes = inc.loc[inc["kind"] == "criminal_case", ["incident_id", "occurred_at", "reported_at", "category",
                                                      "related_incident_id"]]
    if offences is not None:
        crimes = crimes[crimes["category"].astype(object).isin(offences)]
    crimes = pd.DataFrame({"crime_id": crimes["incident_id"].to_numpy(dtype=object),
                           "occurred_at": crimes["occurred_at"].to_numpy(dtype="datetime64[ns]"),
                           "crime_reported": crimes["reported_at"].to_numpy(dtype="datetime64[ns]"),
                           "category": crimes["category"].to_numpy(dtype=object),
                           "related": crimes["related_incident_id"].to_numpy(dtype=object)})
    cols = ["pt", "crime_id", "occurred_at", "category", "known_at"]
    found = []
    # A case that names the dispute it grew from: known once the case is reported.
    m = pts.merge(crimes.dropna(subset=["related"]), left_on="dispute_id", right_on="related")
    found.append(m.assign(known_at=m["crime_reported"]))

    if shared_party:
        key = link_persons(ds)
        parties = ds.incident_parties
        # Only the rows the merges below can reach: the points' disputes and the cases (a
        # night's drift check labels 2,000 points, not the district's millions of parties).
        reach = pd.unique(np.concatenate([pts["dispute_id"].to_numpy(dtype=object),
                                          crimes["crime_id"].to_numpy(dtype=object)]))
        parties = parties[((parties["party_type"] == "person") & parties["incident_id"].isin(reach)).to_numpy()]
        people = pd.DataFrame({"incident_id": parties["incident_id"].to_numpy(dtype=object),
                               "person": parties["party_id"].astype(object).map(key).to_numpy(dtype=object),
                               "added": parties["added_at"].to_numpy(dtype="datetime64[ns]"),
                               "since": party_since(parties, inc).to_numpy(dtype="datetime64[ns]")})
        people = people.dropna(subset=["person"])
        disp = people.rename(columns={"incident_id": "dispute_id", "added": "added_d", "since": "since_d"})
        crime_people = people.merge(crimes, left_on="incident_id", right_on="crime_id").drop(columns="incident_id")
        m = pts.merge(disp, on="dispute_id").merge(crime_people, on="person")
        m = m[(added_by(m["added_d"], m["until"]) & added_by(m["added"], m["until"])).to_numpy()]
        found.append(m.assign(known_at=m[["crime_reported", "since_d", "since"]].max(axis=1)))

    h = pd.concat([f for f in found], ignore_index=True)
    h = h[((h["occurred_at"] > h["as_of"]) & (h["occurred_at"] <= h["until"])).to_numpy()]
    # One row per (point, case): the earliest moment any of its links was on record.
    h = h.sort_values(["pt", "crime_id", "known_at"], kind="stable").drop_duplicates(["pt", "crime_id"])
    return h[cols].astype({"known_at": "datetime64[ns]", "occurred_at": "datetime64[ns]"}).reset_index(drop=True)


def make_labels(ds: Dataset, points: pd.DataFrame, *, horizon_days: int = DEFAULT_HORIZON_DAYS,
                offences: Iterable[str] | None = None, shared_party: bool = True,
                outcomes: pd.DataFrame | None = None) -> pd.Series:
    """1.0 / 0.0 / NaN for each ``(dispute_id, as_of)`` point, index aligned with ``points``.

    ``offences`` limits the criminal-case categories counted (None = all);
    ``shared_party=False`` counts only cases that name the dispute in
    ``related_incident_id``. Points whose ``as_of + horizon`` lies after the last
    record of the data are NaN (unlabelled), never negative.

    ``outcomes`` closes the loop: the recorded outcomes of handled alerts
    (``AlertStore.outcomes()``: dispute_id, closed_at, escalated_to_crime). An alert
    closed as escalated to a crime makes the points of its dispute within the horizon
    before the closing positive, even when the crime is missing from the data
    (recorded elsewhere, or not linked). A recorded "no crime" never overrides a
    crime in the data.
    """
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be positive, got {horizon_days}")
    missing = [c for c in ("dispute_id", "as_of") if c not in points.columns]
    if missing:
        raise ValueError(f"points needs columns dispute_id and as_of; missing {missing}")
    pts = pd.DataFrame({"dispute_id": points["dispute_id"].to_numpy(dtype=object),
                        "as_of": pd.to_datetime(points["as_of"]).to_numpy(dtype="datetime64[ns]")})
    crimes = escalating_crimes(ds, pts, horizon_days=horizon_days, offences=offences, shared_party=shared_party)
    hits = [crimes["pt"]]
    pts["pt"] = np.arange(len(pts))
    horizon = pd.Timedelta(days=horizon_days)
    inc = ds.incidents

    if outcomes is not None and len(outcomes):
        esc = outcomes[outcomes["escalated_to_crime"].fillna(False).astype(bool)]
        esc = pd.DataFrame({"dispute_id": esc["dispute_id"].to_numpy(dtype=object),
                            "closed_at": pd.to_datetime(esc["closed_at"]).to_numpy(dtype="datetime64[ns]")})
        m = pts.merge(esc, on="dispute_id")
        hits.append(m.loc[(m["closed_at"] > m["as_of"]) & (m["closed_at"] <= m["as_of"] + horizon), "pt"])

    y = np.zeros(len(pts))
    y[np.unique(np.concatenate([h.to_numpy(dtype=np.int64) for h in hits]))] = 1.0
    end = data_end(ds) if len(inc) else pd.Timestamp.min
    y[(pts["as_of"] + horizon > end).to_numpy()] = np.nan
    return pd.Series(y, index=points.index, name="label")


__all__ = ["make_labels", "escalating_crimes", "data_end", "DEFAULT_HORIZON_DAYS"]
