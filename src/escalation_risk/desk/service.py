"""What the desk's pages show, over the store, the scorer's history and the model.

:class:`Desk` is the app's one object: the alert store (through its public API), the
directory of users, one :class:`~escalation_risk.Scorer` whose history says which grid
and district each dispute is in, and small caches for what is costly to compute (similar
cases of an alert per night, the governance index, the latest briefing). Every action
goes through the store's lifecycle methods with the acting user as ``by``; the rules of
who may do what to an alert are the store's, the desk only decides whose alert it is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .. import clock
from ..alerts import LEVELS, AlertStore, allowed_next
from ..alerts.lifecycle import ACTIVE_STATUSES, LEVEL_RANK
from ..response import PLANS
from ..scoring import Scorer
from .users import Directory, User

__all__ = ["Desk"]

log = logging.getLogger("escalation_risk.desk")

#: How long the supervisor's governance index and briefing are reused before recomputing.
CACHE_SECONDS = 600.0
#: Alerts whose similar cases are kept (found once per alert and night, then reused).
SIMILAR_ENTRIES = 20_000
#: How long the list of open alerts is used before it is re-read (see ``_OpenAlerts``).
LIST_SECONDS = 10.0


class TTLCache:
    """A small thread-safe cache: an LRU of at most ``size`` entries, each valid ``ttl`` seconds."""

    def __init__(self, size: int, ttl: float | None = None) -> None:
        self.size, self.ttl = size, ttl
        self._items: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and (self.ttl is None or now - hit[0] < self.ttl):
                self._items.move_to_end(key)
                return hit[1]
        value = make()  # outside the lock: a slow computation never blocks the other pages
        with self._lock:
            self._items[key] = (now, value)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


class _OpenAlerts:
    """The open alerts, read from the store at most every ``ttl`` seconds, never in a page's time.

    Reading every open alert costs tens of milliseconds per thousand (the store converts
    each row), so a page gets the last list at once and an expired list is re-read in the
    background. The desk's own actions patch the list with the store's answer right away,
    so whoever acted sees the change; changes made elsewhere (the nightly job, the command
    line) show within ``ttl`` seconds and a re-read.
    """

    _PATCHED = ("status", "owner", "updated_at", "status_at", "closed_at", "outcome", "escalated_to_crime")

    def __init__(self, load: Callable[[], pd.DataFrame], ttl: float) -> None:
        self._load, self.ttl = load, ttl
        self._df: pd.DataFrame | None = None
        self._at = 0.0
        self._busy = False
        self._patches: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self) -> pd.DataFrame:
        with self._lock:
            df, stale = self._df, time.monotonic() - self._at > self.ttl
            start = df is not None and stale and not self._busy
            if start:
                self._busy = True
                self._patches = {}
        if df is None:
            return self._refresh()
        if start:
            threading.Thread(target=self._refresh, name="desk-open-alerts", daemon=True).start()
        return df

    def _refresh(self) -> pd.DataFrame:
        try:
            df = self._load()
            with self._lock:
                for alert in self._patches.values():  # actions taken while the store was being read
                    df = self._patched(df, alert)
                self._df, self._at = df, time.monotonic()
            return df
        finally:
            with self._lock:
                self._busy = False

    def patch(self, alert: dict[str, Any]) -> None:
        """Apply an alert as the store returned it after an action (a closed one leaves the list)."""
        with self._lock:
            if self._busy:
                self._patches[int(alert["alert_id"])] = alert
            if self._df is not None:
                self._df = self._patched(self._df, alert)

    def _patched(self, df: pd.DataFrame, alert: dict[str, Any]) -> pd.DataFrame:
        hit = (df["alert_id"] == alert["alert_id"]).to_numpy()
        if alert["status"] == "closed":
            return df[~hit]
        if not hit.any():
            return df
        df = df.copy()  # readers may hold the old frame
        for col in self._PATCHED:
            if col in df.columns and col in alert:
                df.loc[hit, col] = alert[col]
        return df


@dataclass(frozen=True)
class _Places:
    """Where each dispute of the history is, as plain object arrays: the frame's string
    columns would be converted on every look-up (a page's cost at 100,000 persons)."""

    index: pd.Index
    grid: np.ndarray
    district: np.ndarray

    @property
    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"grid": self.grid, "district": self.district}, index=self.index)


class Desk:
    """The store, the users and one scorer, as the desk and the API use them."""

    def __init__(self, store: AlertStore, scorer: Scorer, *, directory: Directory | None = None) -> None:
        self.store = store
        self.scorer = scorer
        self.directory = directory or Directory(store)
        self._places: _Places | None = None
        self._places_of: int = -1
        self._lock = threading.Lock()
        # An entry is three small rows: room for every open alert of a busy district.
        self._similar = TTLCache(SIMILAR_ENTRIES)
        self._slow = TTLCache(32, CACHE_SECONDS)
        #: (dispute_id, night) -> row of ``_query_rows``: the open alerts' feature rows and their
        #: contributions, computed in one batch by :meth:`warm` (a page then only searches).
        self._query_pos: dict[tuple[str, pd.Timestamp], int] = {}
        self._query_rows: tuple[pd.DataFrame, pd.DataFrame] | None = None
        self._open = _OpenAlerts(lambda: self._with_places(self.store.alerts(status="open")), LIST_SECONDS)
        #: Whether :meth:`warm` has finished (``/healthz`` says so).
        self.warmed = False

    def warm(self) -> None:
        """Compute ahead what the first page views would wait for: the dispute -> grid table,
        the case index of similar cases, the open alerts. Run in a background thread at start."""
        from ..cases import case_index

        self.places()
        open_alerts = self.open_alerts()
        case_index(self.scorer.model, self.scorer.history)
        self._prepare_queries(open_alerts)
        self.governance([])
        self.warmed = True

    def changed(self, alert: dict[str, Any]) -> None:
        """An alert changed through the desk (``alert`` as the store returned it): lists show it at once."""
        self._open.patch(alert)

    def open_alerts(self) -> pd.DataFrame:
        """Every open alert with its grid and district (see ``_OpenAlerts`` for how fresh)."""
        return self._open.get()

    # -- where a dispute is ---------------------------------------------------------

    def places(self) -> pd.DataFrame:
        """dispute_id -> grid, district, from the scorer's history (rebuilt when it grows)."""
        return self._place_table().frame

    def _place_table(self) -> _Places:
        history = self.scorer.history
        with self._lock:
            if self._places is None or self._places_of != len(history.incidents):
                inc = history.incidents[["incident_id", "place_id"]]
                pl = history.places[["place_id", "grid_id", "district"]]
                m = inc.merge(pl, on="place_id", how="left").drop_duplicates("incident_id")
                self._places = _Places(pd.Index(m["incident_id"].astype(str).to_numpy(dtype=object), dtype=object,
                                                name="dispute_id"),
                                       m["grid_id"].to_numpy(dtype=object, na_value=None),
                                       m["district"].to_numpy(dtype=object, na_value=None))
                self._places_of = len(history.incidents)
            return self._places

    def place(self, alert: dict[str, Any]) -> tuple[str | None, str | None]:
        """(grid, district) of an alert's dispute (see :meth:`_locate`)."""
        grid, district = self._locate(np.array([str(alert["dispute_id"])], dtype=object),
                                      np.array([alert.get("district") or ""], dtype=object))
        return grid[0], district[0]

    def _with_places(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` (alerts) with the ``grid`` and ``place_district`` of each dispute (see :meth:`_locate`)."""
        own = df["district"].fillna("").astype(str).to_numpy(dtype=object) if "district" in df \
            else np.full(len(df), "", dtype=object)
        grid, district = self._locate(df["dispute_id"].astype(str).to_numpy(dtype=object), own)
        # Object columns, so a missing grid stays None (a string column would make it NaN).
        return df.assign(grid=pd.Series(grid, index=df.index, dtype=object),
                         place_district=pd.Series(district, index=df.index, dtype=object))

    def _locate(self, dispute_ids: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The grid and district of each dispute, given the district its alert names (``""`` if none).

        The grid comes from the scorer's history, one district's data. In a province's
        store dispute ids repeat across districts, so an alert of another district (its
        ``district`` set and not the history's) gets no grid: only its district's
        supervisor and admins see it. The store's district wins when it has one."""
        places = self._place_table()
        pos = places.index.get_indexer(dispute_ids)
        found = pos >= 0
        there = np.full(len(pos), None, dtype=object)
        there[found] = places.district[pos[found]]
        found &= (own == "") | (own == there)
        grid = np.full(len(pos), None, dtype=object)
        grid[found] = places.grid[pos[found]]
        district = np.full(len(pos), None, dtype=object)
        district[found] = there[found]
        district[own != ""] = own[own != ""]
        return grid, district

    def knows(self, dispute_id: str) -> bool:
        """Whether the desk's history holds ``dispute_id``."""
        return str(dispute_id) in self._place_table().index

    def visible(self, user: User, df: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``df`` (alerts with places, see :meth:`open_alerts`) that ``user`` may see."""
        if user.role == "admin":
            return df
        if user.role == "supervisor":
            return df[df["place_district"].to_numpy() == user.district]
        return df[df["grid"].isin(list(user.grids)).to_numpy()]

    # -- my alerts ----------------------------------------------------------------------

    def my_alerts(self, user: User) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Open alerts ``user`` may see, overdue first, then by level and due time; and the counts."""
        now = clock.now()
        df = self.visible(user, self.open_alerts())
        overdue = df["status"].isin(ACTIVE_STATUSES).to_numpy() & (df["due_at"] < now).to_numpy()
        df = df.assign(overdue=overdue, rank=-df["level"].map(LEVEL_RANK).fillna(-1).astype(int))
        df = df.sort_values(["overdue", "rank", "due_at", "alert_id"], ascending=[False, True, True, True])
        counts = {"open": int(len(df)), "overdue": int(overdue.sum()),
                  **{lvl: int((df["level"] == lvl).sum()) for lvl in LEVELS}}
        return df, counts

    # -- one alert -------------------------------------------------------------------------

    def alert(self, alert_id: int) -> dict[str, Any]:
        """The alert with its audit trail (the store's), its grid and district, and what may follow."""
        a = self.store.alert(alert_id)
        a["grid"], a["place_district"] = self.place(a)
        a["overdue"] = a["status"] in ACTIVE_STATUSES and pd.Timestamp(a["due_at"]) < clock.now()
        a["next"] = [s for s in allowed_next(a["status"]) if s not in ("assigned", "closed")]
        a["can_close"] = "closed" in allowed_next(a["status"])
        plan = PLANS.get(a["plan"])
        a["plan_zh"] = plan.zh if plan else a["plan"]
        a["plan_en"] = plan.en if plan else a["plan"]
        return a

    def _prepare_queries(self, alerts: pd.DataFrame) -> None:
        """The feature rows and contributions of ``alerts``' disputes as of their nights, in one
        batch: what finding an alert's similar cases would otherwise compute per page."""
        history, model = self.scorer.history, self.scorer.model
        did = alerts["dispute_id"].astype(str).to_numpy(dtype=object)
        night = pd.to_datetime(alerts["last_as_of"]).to_numpy()
        inc = history.incidents
        reported = pd.Series(inc["reported_at"].to_numpy(), index=inc["incident_id"].astype(str).to_numpy(dtype=object))
        rep = reported[~reported.index.duplicated()].reindex(did).to_numpy()
        # Only what similar cases would accept: a dispute of the history, asked about once reported.
        keep = ~pd.isna(rep) & (rep <= night)
        pts = pd.DataFrame({"dispute_id": did[keep], "as_of": night[keep]}).drop_duplicates(ignore_index=True)
        if not len(pts):
            return
        X = model.features(history, pts)
        C = model.contributions(X)
        self._query_rows = (X, C)
        self._query_pos = {(d, pd.Timestamp(t)): i for i, (d, t) in enumerate(zip(pts["dispute_id"], pts["as_of"]))}

    def similar(self, a: dict[str, Any], k: int = 3) -> list[dict[str, Any]]:
        """The ``k`` most similar past cases of the alert's dispute, as known the night it shows."""
        from ..cases import case_index, similar_cases, similar_from_features

        def find() -> list[dict[str, Any]]:
            did, night = str(a["dispute_id"]), pd.Timestamp(a["last_as_of"])
            if not self.knows(did):
                return []  # a dispute the desk's history does not hold: nothing to compare
            model, history = self.scorer.model, self.scorer.history
            pos, rows = self._query_pos.get((did, night)), self._query_rows
            try:
                if pos is not None and rows is not None:
                    df = similar_from_features(model, case_index(model, history), rows[0].iloc[[pos]], did, night,
                                               k=k, contributions=rows[1].iloc[[pos]])
                else:
                    df = similar_cases(model, history, did, night, k=k)
            except (KeyError, ValueError, IndexError) as e:
                # The page still serves the alert; the operator learns why the cases are missing.
                log.warning("similar cases of alert %s: %s", a["alert_id"], type(e).__name__)
                return []
            # The query's description in attrs is not shown here, and pandas deep-copies attrs
            # on every row taken: a third of the page's cost.
            df.attrs.clear()
            return df.to_dict("records")

        return list(self._similar.get((int(a["alert_id"]), str(a["last_as_of"]), k), find))

    def workers_for(self, grid: str | None) -> list[str]:
        """Enabled workers given ``grid``: whom a supervisor may assign its alerts to."""
        return [u.username for u in self.directory.users()
                if not u.disabled and u.role == "worker" and grid in u.grids]

    # -- supervisor -------------------------------------------------------------------------

    def supervisor(self, user: User, district: str | None) -> dict[str, Any]:
        """Open and overdue alerts per grid and by owner, the governance index and the briefing's night."""
        now = clock.now()
        df = self.visible(user, self.open_alerts())
        if district:
            df = df[df["place_district"].to_numpy() == district]
        overdue = df["status"].isin(ACTIVE_STATUSES).to_numpy() & (df["due_at"] < now).to_numpy()
        df = df.assign(overdue=overdue, grid=df["grid"].fillna("?"))
        by_grid = (df.groupby("grid").agg(open=("alert_id", "size"), overdue=("overdue", "sum"))
                   .reset_index().sort_values(["overdue", "open"], ascending=False))
        late = df[df["overdue"]]
        by_owner = (late.groupby("owner").agg(count=("alert_id", "size"), oldest_due=("due_at", "min"))
                    .reset_index().sort_values("count", ascending=False))
        wanted = district or (user.district if user.role == "supervisor" else None)
        p = self.places()
        grids = set(df["grid"]) | set((p if wanted is None else p[p["district"] == wanted])["grid"].dropna())
        return {"by_grid": by_grid.to_dict("records"), "by_owner": by_owner.to_dict("records"),
                "late": late.sort_values("due_at").head(50).to_dict("records"),
                "governance": self.governance(sorted(str(g) for g in grids)),
                "night": self.store.last_night()}

    def governance(self, grids: list[str]) -> list[dict[str, Any]]:
        """The composite governance index of the current period for ``grids`` (cached a few minutes)."""
        from ..governance import governance_index

        def compute() -> pd.DataFrame:
            return governance_index(self.scorer.history, self.store, by="grid", period="M",
                                    as_of=clock.now())
        try:
            gi = self._slow.get(("governance", clock.today()), compute)
        except (ValueError, KeyError) as e:
            log.warning("governance index for the supervisor's page: %s", type(e).__name__)
            return []
        if not len(gi):
            return []
        last = gi["period"].max()
        rows = gi[(gi["period"] == last) & gi["unit"].astype(str).isin(grids)]
        return rows.to_dict("records")

    def briefing(self, lang: str) -> str | None:
        """The briefing page of the latest recorded night (cached a few minutes), or None."""
        from ..briefing import build_briefing

        night = self.store.last_night()
        if night is None:
            return None
        return str(self._slow.get(("briefing", str(night), lang),
                                  lambda: build_briefing(self.scorer.history, self.store, night, lang=lang)))
