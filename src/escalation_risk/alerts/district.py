"""One district of a province store, seen through the store's own reading API.

A province's districts share one store; their dispute ids repeat. What reads a night
(the briefing, the governance index) reads it through :func:`district_view`: the same
store, with every listing narrowed to one district. Writes go to the store as they are.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .store import AlertStore


class DistrictStore(AlertStore):
    """``store`` narrowed to ``district`` for reading: alerts, runs, scores, events, overdue."""

    def __init__(self, store: AlertStore, district: str) -> None:  # noqa: D107 (shares the store's engine)
        self.__dict__.update(store.__dict__)
        self.district = district

    def __repr__(self) -> str:
        return f"DistrictStore({super().__repr__()}, district={self.district!r})"

    def dispose(self) -> None:
        """Nothing: the pool belongs to the store this view was made of."""

    def alerts(self, status: Any = None, level: Any = None, dispute_id: str | None = None,
               district: str | None = None) -> pd.DataFrame:
        """The district's alerts (see :meth:`AlertStore.alerts`)."""
        return super().alerts(status=status, level=level, dispute_id=dispute_id, district=self.district)

    def runs(self) -> pd.DataFrame:
        """The district's recorded nights."""
        r = super().runs()
        return r[r["district"] == self.district].reset_index(drop=True)

    def scores(self, dispute_id: str | None = None, as_of: Any = None, model_version: str | None = None,
               district: str | None = None) -> pd.DataFrame:
        """The district's score history."""
        return super().scores(dispute_id=dispute_id, as_of=as_of, model_version=model_version,
                              district=self.district)

    def events(self, alert_id: int | None = None) -> pd.DataFrame:
        """The audit trail of the district's alerts."""
        e = super().events(alert_id)
        ids = set(super().alerts(district=self.district)["alert_id"])
        return e[e["alert_id"].isin(ids)].reset_index(drop=True)

    def overdue(self, now: Any = None) -> pd.DataFrame:
        """The district's overdue alerts."""
        o = super().overdue(now)
        return o[o["district"] == self.district].reset_index(drop=True)

    def follow_ups_due(self, now: Any = None, days: int = 7) -> pd.DataFrame:
        """The district's alerts waiting for a follow-up."""
        f = super().follow_ups_due(now, days)
        return f[f["district"] == self.district].reset_index(drop=True)

    def last_night(self, district: str | None = None) -> pd.Timestamp | None:
        """The newest night recorded for the district."""
        return super().last_night(self.district)


def district_view(store: AlertStore, district: str | None) -> AlertStore:
    """``store`` narrowed to one district (``None``: the whole store, unchanged)."""
    if district is None:
        return store
    return DistrictStore(store, district)


def store_districts(store: AlertStore) -> list[str]:
    """The districts the store holds nights of (``""``: a lone district), sorted."""
    return sorted(set(store.runs()["district"].astype(str)))
