"""The lifecycle actions people take on an alert: assign, update, close."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from ..masking import mask_identifiers
from .errors import AlertNotFoundError
from .lifecycle import (
    AlertTransitionError,
    allowed_next,
    check_transition,
)
from .queries import Queries
from .rows import _alert_id, _now, _require_text
from .tables import alerts_table, events_table


class Actions(Queries):
    """Human actions on one alert, each one transaction with its audit event (a mixin of :class:`AlertStore`)."""

    # -- lifecycle -------------------------------------------------------------

    def assign(self, alert_id: int, to: str, by: str, note: str = "", at: Any = None) -> dict[str, Any]:
        """Make ``to`` the owner of an open alert; a ``raised`` alert becomes ``assigned``.

        Later statuses are kept: a handover does not undo work done. Returns the alert.
        """
        _require_text(to, "to")
        when = _now(at)

        def change(current: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
            if current["status"] == "closed":
                raise AlertTransitionError(
                    alert_id, "closed", "assigned", (), "a closed alert keeps its last owner"
                )
            status = "assigned" if current["status"] == "raised" else current["status"]
            return status, {"owner": to}, note

        return self._change(alert_id, "assigned", by, when, change)

    def update(self, alert_id: int, status: str, by: str, note: str = "", at: Any = None) -> dict[str, Any]:
        """Move an alert to ``status`` if the lifecycle allows it. Returns the alert.

        ``assigned`` goes through ``assign`` (it needs an owner) and ``closed``
        through ``close`` (it needs an outcome).
        """
        when = _now(at)

        def change(current: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
            hint = {
                "assigned": "use assign(), which records the new owner",
                "closed": "use close(), which records the outcome",
            }.get(status, "")
            if hint:
                allowed = tuple(s for s in allowed_next(current["status"]) if s not in ("assigned", "closed"))
                raise AlertTransitionError(alert_id, current["status"], status, allowed, hint)
            check_transition(alert_id, current["status"], status)
            return status, {}, note

        return self._change(alert_id, "status", by, when, change)

    def close(
        self,
        alert_id: int,
        by: str,
        outcome: str,
        escalated_to_crime: bool | None,
        note: str = "",
        at: Any = None,
    ) -> dict[str, Any]:
        """Close an alert after its follow-up, recording the outcome. Returns the alert.

        ``escalated_to_crime`` is whether the dispute did turn into a crime (None when
        not known); with ``outcome`` it becomes a label for the next training.
        """
        _require_text(outcome, "outcome")
        if escalated_to_crime is not None:
            if not isinstance(escalated_to_crime, (bool, np.bool_)):
                raise ValueError(
                    f"escalated_to_crime: expected True, False or None, got {escalated_to_crime!r}"
                )
            escalated_to_crime = bool(escalated_to_crime)
        when = _now(at)

        def change(current: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
            check_transition(alert_id, current["status"], "closed")
            values = {"closed_at": when, "outcome": mask_identifiers(outcome),
                      "escalated_to_crime": escalated_to_crime}
            text = f"outcome: {outcome}" + (f"; {note}" if note else "")
            return "closed", values, text

        return self._change(alert_id, "closed", by, when, change)

    def _change(self, alert_id: int, event: str, who: str, when: datetime, change: Any) -> dict[str, Any]:
        """Apply one human action to one alert and log it, in one transaction."""
        _require_text(who, "by")
        alert_id = _alert_id(alert_id)
        a = alerts_table
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(a).where(a.c.alert_id == alert_id)).mappings().first()
            if found is None:
                raise AlertNotFoundError(alert_id)
            current = dict(found)
            if when < current["raised_at"]:
                raise ValueError(
                    f"alert {alert_id}: at {when} is before the alert was raised ({current['raised_at']})"
                )
            status, values, note = change(current)
            values = {**values, "status": status, "updated_at": when}
            if status != current["status"]:
                values["status_at"] = when
            # Guard on the status read above, so two people acting at once cannot
            # both succeed from the same starting state.
            res = conn.execute(
                sa.update(a)
                .where(a.c.alert_id == alert_id, a.c.status == current["status"])
                .values(**values)
            )
            if res.rowcount != 1:
                raise AlertTransitionError(
                    alert_id, current["status"], status, allowed_next(current["status"]),
                    "the alert changed meanwhile; reload and retry",
                )
            conn.execute(
                sa.insert(events_table).values(
                    alert_id=alert_id,
                    at=when,
                    who=who,
                    event=event,
                    from_status=current["status"],
                    to_status=status,
                    owner=values.get("owner", current["owner"]),
                    # People type phone numbers into notes; the trail never keeps one.
                    note=mask_identifiers(note or ""),
                )
            )
        return self.alert(alert_id)

