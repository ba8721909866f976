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
from .known import added_by
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
    offences = _offences(offences)
    horizon = pd.Timedelta(days=horizon_days)

    pts = pd.DataFrame({"pt": np.arange(len(points)),
                        "dispute_id": points["dispute_id"].to_numpy(dtype=object),
                        "as_of": pd.to_datetime(points["as_of"]).to_numpy(dtype="datetime64[ns]")})
    inc = ds.incidents
    crimes = inc.loc[inc["kind"] == "criminal_case", ["incident_id", "occurred_at", "category",
                                                      "related_incident_id"]]
    if offences is not None:
        crimes = crimes[crimes["category"].astype(object).isin(offences)]

    hits = []
    # A case that names the dispute it grew from.
    rel = crimes.dropna(subset=["related_incident_id"])
    m = pts.merge(rel[["related_incident_id", "occurred_at"]].astype({"related_incident_id": object}),
                  left_on="dispute_id", right_on="related_incident_id")
    hits.append(m.loc[(m["occurred_at"] > m["as_of"]) & (m["occurred_at"] <= m["as_of"] + horizon), "pt"])

    if shared_party:
        key = link_persons(ds)
        parties = ds.incident_parties
        parties = parties.loc[parties["party_type"] == "person", ["incident_id", "party_id", "added_at"]]
        parties = parties.assign(person=parties["party_id"].astype(object).map(key)).dropna(subset=["person"])
        parties = parties[["incident_id", "person", "added_at"]].astype({"incident_id": object, "person": object})
        # A person added to an incident several times counts from the earliest (NaT: from the start).
        parties = parties.sort_values("added_at", na_position="first", kind="stable") \
            .drop_duplicates(["incident_id", "person"])
        dispute_people = parties.rename(columns={"incident_id": "dispute_id", "added_at": "added_d"})
        crime_people = parties.merge(crimes[["incident_id", "occurred_at"]].astype({"incident_id": object}),
                                     on="incident_id").drop(columns="incident_id")
        crime_people = crime_people.rename(columns={"added_at": "added_c"})
        m = pts.merge(dispute_people, on="dispute_id").merge(crime_people, on="person")
        end = m["as_of"] + horizon
        hit = (m["occurred_at"] > m["as_of"]) & (m["occurred_at"] <= end)
        hit &= added_by(m["added_d"], end) & added_by(m["added_c"], end)
        hits.append(m.loc[hit, "pt"])

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


__all__ = ["make_labels", "data_end", "DEFAULT_HORIZON_DAYS"]
