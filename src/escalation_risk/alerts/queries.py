"""Reading the store: alerts, the audit trail, scores, runs, outcomes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from .connection import StoreBase
from .errors import AlertNotFoundError
from .lifecycle import (
    ACTIVE_STATUSES,
    FOLLOW_UP_STATUSES,
    LEVELS,
    OPEN_STATUSES,
    STATUSES,
)
from .rows import _alert_id, _chunks, _frame, _loads, _now, _one_or_many, _plain, _timestamp
from .tables import (
    _ALERT_COLUMNS,
    _EVENT_COLUMNS,
    _OUTCOME_COLUMNS,
    _RUN_COLUMNS,
    _SCORE_COLUMNS,
    alerts_table,
    events_table,
    replaced_runs_table,
    runs_table,
    schema_version_table,
    scores_table,
)


class Queries(StoreBase):
    """What the store answers (a mixin of :class:`AlertStore`)."""

    @property
    def schema_version(self) -> int:
        """The schema version recorded in the store."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(schema_version_table.c.version))).scalar_one())


    def last_night(self, district: str = "") -> pd.Timestamp | None:
        """The newest night recorded in the store for ``district``, or None."""
        with self.engine.connect() as conn:
            newest = conn.execute(sa.select(sa.func.max(runs_table.c.as_of))
                                  .where(runs_table.c.district == district)).scalar()
        return None if newest is None else pd.Timestamp(newest)

    def replaced_runs(self) -> pd.DataFrame:
        """First recordings of nights recorded again on corrected input, with when."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(replaced_runs_table).order_by(replaced_runs_table.c.replaced_id)).all()
        return _frame(rows, [c.name for c in replaced_runs_table.columns])

    def previous_scores(
        self,
        dispute_ids: Iterable[Any] | None,
        before: Any,
        model_version: str | None = None,
        *,
        district: str | None = "",
    ) -> pd.DataFrame:
        """The latest recorded score of each dispute strictly before ``before``.

        For the scoring layer's trend. ``dispute_ids=None`` means every dispute; a
        dispute never scored before is simply absent. Any model version counts unless
        ``model_version`` is given, so a new model does not reset every trend to new.
        ``district`` is the district the ids belong to (``""``: a lone district;
        ``None``: every district, one row per district and dispute).
        """
        cutoff = _timestamp(before, "before")
        s = scores_table
        rank = sa.func.row_number().over(
            partition_by=(s.c.district, s.c.dispute_id), order_by=(s.c.as_of.desc(), s.c.score_id.desc())
        ).label("rank")
        conditions = [s.c.as_of < cutoff]
        if district is not None:
            conditions.append(s.c.district == district)
        if model_version is not None:
            conditions.append(s.c.model_version == model_version)
        groups: list[Sequence[Any] | None]
        if dispute_ids is None:
            groups = [None]
        else:
            groups = list(_chunks(list(dict.fromkeys(str(d) for d in dispute_ids))))
        rows: list[Any] = []
        with self.engine.connect() as conn:
            for group in groups:
                where = conditions if group is None else [*conditions, s.c.dispute_id.in_(group)]
                inner = sa.select(*(s.c[c] for c in _SCORE_COLUMNS), rank).where(*where).subquery()
                query = (
                    sa.select(*(inner.c[c] for c in _SCORE_COLUMNS))
                    .where(inner.c.rank == 1)
                    .order_by(inner.c.district, inner.c.dispute_id)
                )
                rows.extend(conn.execute(query).all())  # fetchall: not a fetchone per row
        return _frame(rows, _SCORE_COLUMNS)


    # -- reading ---------------------------------------------------------------

    def alerts(
        self,
        status: str | Iterable[str] | None = None,
        level: str | Iterable[str] | None = None,
        dispute_id: str | None = None,
        district: str | None = None,
    ) -> pd.DataFrame:
        """Alerts, newest first, optionally filtered.

        ``status`` is a status, several, or ``"open"`` for every status but closed;
        ``level`` one level or several; ``district`` one district of a province.
        """
        a = alerts_table
        query = sa.select(a).order_by(a.c.alert_id.desc())
        if status is not None:
            wanted = _one_or_many(status, "status", (*STATUSES, "open"))
            if "open" in wanted:
                wanted = sorted(set(wanted) - {"open"} | set(OPEN_STATUSES))
            query = query.where(a.c.status.in_(wanted))
        if level is not None:
            query = query.where(a.c.level.in_(_one_or_many(level, "level", LEVELS)))
        if dispute_id is not None:
            query = query.where(a.c.dispute_id == str(dispute_id))
        if district is not None:
            query = query.where(a.c.district == str(district))
        with self.engine.connect() as conn:
            return _frame(conn.execute(query), _ALERT_COLUMNS)

    def alert(self, alert_id: int) -> dict[str, Any]:
        """One alert as a dict, with its audit trail under ``"events"`` (oldest first)."""
        alert_id = _alert_id(alert_id)
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(alerts_table).where(alerts_table.c.alert_id == alert_id)
            ).mappings().first()
            if row is None:
                raise AlertNotFoundError(alert_id)
            events = conn.execute(
                sa.select(events_table)
                .where(events_table.c.alert_id == alert_id)
                .order_by(events_table.c.event_id)
            ).mappings().all()
        out = {k: _plain(v) for k, v in row.items()}
        out["reasons"] = _loads(row["reasons"])
        out["reasons_zh"] = _loads(row.get("reasons_zh"))
        out["events"] = [{k: _plain(v) for k, v in e.items()} for e in events]
        return out

    def events(self, alert_id: int | None = None) -> pd.DataFrame:
        """The audit trail, oldest first; of one alert when ``alert_id`` is given."""
        query = sa.select(events_table).order_by(events_table.c.event_id)
        if alert_id is not None:
            query = query.where(events_table.c.alert_id == _alert_id(alert_id))
        with self.engine.connect() as conn:
            return _frame(conn.execute(query), _EVENT_COLUMNS)

    def overdue(self, now: Any = None) -> pd.DataFrame:
        """Open alerts not yet resolved whose due time has passed, most overdue first.

        Adds ``overdue_by`` (a Timedelta).
        """
        when = _now(now, "now")
        a = alerts_table
        query = (
            sa.select(a)
            .where(a.c.status.in_(ACTIVE_STATUSES), a.c.due_at < when)
            .order_by(a.c.due_at, a.c.alert_id)
        )
        with self.engine.connect() as conn:
            df = _frame(conn.execute(query), _ALERT_COLUMNS)
        df["overdue_by"] = pd.Timestamp(when) - df["due_at"]
        return df

    def follow_ups_due(self, now: Any = None, days: int = 7) -> pd.DataFrame:
        """Alerts resolved or escalated more than ``days`` ago and not yet followed up.

        Adds ``waiting`` (a Timedelta since the alert was resolved or escalated).
        """
        if days < 0:
            raise ValueError(f"days: expected a number >= 0, got {days!r}")
        when = _now(now, "now")
        a = alerts_table
        query = (
            sa.select(a)
            .where(
                a.c.status.in_(FOLLOW_UP_STATUSES),
                a.c.status_at < when - pd.Timedelta(days=days).to_pytimedelta(),
            )
            .order_by(a.c.status_at, a.c.alert_id)
        )
        with self.engine.connect() as conn:
            df = _frame(conn.execute(query), _ALERT_COLUMNS)
        df["waiting"] = pd.Timestamp(when) - df["status_at"]
        return df

    def outcomes(self) -> pd.DataFrame:
        """Closed alerts with their recorded outcome: labels for the next training."""
        a = alerts_table
        query = (
            sa.select(*(a.c[c] for c in _OUTCOME_COLUMNS))
            .where(a.c.status == "closed")
            .order_by(a.c.closed_at, a.c.alert_id)
        )
        with self.engine.connect() as conn:
            return _frame(conn.execute(query), _OUTCOME_COLUMNS)

    def scores(
        self,
        dispute_id: str | None = None,
        as_of: Any = None,
        model_version: str | None = None,
        district: str | None = None,
    ) -> pd.DataFrame:
        """The score history, oldest night first, optionally filtered."""
        s = scores_table
        query = sa.select(*(s.c[c] for c in _SCORE_COLUMNS)).order_by(
            s.c.as_of, s.c.district, s.c.dispute_id, s.c.score_id)
        if district is not None:
            query = query.where(s.c.district == str(district))
        if dispute_id is not None:
            query = query.where(s.c.dispute_id == str(dispute_id))
        if as_of is not None:
            query = query.where(s.c.as_of == _timestamp(as_of, "as_of"))
        if model_version is not None:
            query = query.where(s.c.model_version == model_version)
        with self.engine.connect() as conn:
            return _frame(conn.execute(query), _SCORE_COLUMNS)

    def runs(self) -> pd.DataFrame:
        """One row per recorded night, oldest first."""
        query = sa.select(runs_table).order_by(runs_table.c.as_of, runs_table.c.district, runs_table.c.run_id)
        with self.engine.connect() as conn:
            return _frame(conn.execute(query), _RUN_COLUMNS)

