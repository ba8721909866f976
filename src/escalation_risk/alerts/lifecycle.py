"""The alert lifecycle: statuses, the allowed transitions and due times.

An alert follows one dispute from the night it first reaches an alert level to the
moment a person closes it with a recorded outcome (the closed loop)::

    raised -> assigned -> in_progress -> resolved | escalated -> follow_up -> closed

``TRANSITIONS`` below is the one table that says which status change is allowed;
the store consults it for every change and refuses anything else with
``AlertTransitionError``. Reasons for the edges beyond the straight line:

* ``raised -> in_progress``: whoever raises an alert follows it, so the owner may
  start work without assigning it to someone else first.
* ``raised/assigned -> escalated``: a red alert may have to go to the police (or
  another authority) at once, before any local work starts.
* ``resolved -> in_progress`` and ``follow_up -> in_progress``: the dispute flared up
  again; the alert is reopened rather than a second one raised, which keeps one open
  alert per dispute and the whole history in one audit trail.
* ``closed`` is reached only from ``follow_up`` and only through ``close`` (which
  demands an outcome), because recorded outcomes become the next training labels.

Assignment is not a status change of its own: ``assign`` moves a ``raised`` alert
to ``assigned`` and leaves any later status as it is (a handover does not undo the
work done), always recording the new owner.

This module is pure: no database, no pandas beyond timestamps.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

__all__ = [
    "STATUSES",
    "OPEN_STATUSES",
    "ACTIVE_STATUSES",
    "FOLLOW_UP_STATUSES",
    "TRANSITIONS",
    "LEVELS",
    "LEVEL_RANK",
    "TRENDS",
    "DUE_DAYS",
    "OUTCOMES",
    "AlertTransitionError",
    "allowed_next",
    "check_transition",
    "due_at",
    "tighten_due",
]

#: Every status an alert can be in, in lifecycle order.
STATUSES: tuple[str, ...] = (
    "raised",
    "assigned",
    "in_progress",
    "resolved",
    "escalated",
    "follow_up",
    "closed",
)

#: The allowed status changes (see the module docstring for why each edge exists).
#: ``assigned`` is reached through ``assign`` only, ``closed`` through ``close`` only.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "raised": frozenset({"assigned", "in_progress", "escalated"}),
    "assigned": frozenset({"in_progress", "escalated"}),
    "in_progress": frozenset({"resolved", "escalated"}),
    "resolved": frozenset({"follow_up", "in_progress"}),
    "escalated": frozenset({"follow_up"}),
    "follow_up": frozenset({"closed", "in_progress"}),
    "closed": frozenset(),
}

#: Statuses of an alert that is still open (one open alert per dispute).
OPEN_STATUSES: tuple[str, ...] = tuple(s for s in STATUSES if s != "closed")
#: Open and not yet resolved: these are the ones that can be overdue.
ACTIVE_STATUSES: tuple[str, ...] = ("raised", "assigned", "in_progress")
#: Waiting for a follow-up visit.
FOLLOW_UP_STATUSES: tuple[str, ...] = ("resolved", "escalated")

#: Risk levels from the scoring layer, most severe first.
LEVELS: tuple[str, ...] = ("red", "orange", "yellow", "blue")
#: Higher is more severe.
LEVEL_RANK: Mapping[str, int] = {"blue": 0, "yellow": 1, "orange": 2, "red": 3}
TRENDS: tuple[str, ...] = ("rising", "steady", "falling", "new")

#: Days people get to act on an alert, counted from when they can act: the morning after
#: the night that raised it (or raised its level). An alert of the night of D is due by
#: the end of D+1 (red), D+3 (orange), D+7 (yellow).
DUE_DAYS: Mapping[str, int] = {"red": 1, "orange": 3, "yellow": 7}

#: The outcomes a closing person picks from (the desk's list; ``close`` itself takes any
#: text so that older records and the command line keep working). With
#: ``escalated_to_crime`` they become the next training labels.
OUTCOMES: tuple[str, ...] = (
    "settled_by_mediation",   # an agreement reached in mediation
    "settled_by_parties",     # the parties settled it themselves
    "referred_to_court",      # handed to a court or arbitration
    "referred_to_police",     # handed to the police
    "referred_to_authority",  # handed to another authority (labour, housing, ...)
    "withdrawn",              # the complaint was withdrawn
    "parties_moved_away",     # the parties left the area
)


class AlertTransitionError(ValueError):
    """A status change that the lifecycle does not allow.

    Carries ``alert_id``, ``current``, ``requested`` and ``allowed`` so callers (and
    the command line) can say exactly what went wrong.
    """

    def __init__(
        self,
        alert_id: int,
        current: str,
        requested: str,
        allowed: tuple[str, ...],
        hint: str = "",
    ) -> None:
        self.alert_id = alert_id
        self.current = current
        self.requested = requested
        self.allowed = allowed
        allowed_txt = ", ".join(allowed) if allowed else "none (the alert is closed)"
        msg = (
            f"alert {alert_id}: cannot go from '{current}' to '{requested}'; "
            f"allowed from '{current}': {allowed_txt}"
        )
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


def allowed_next(status: str) -> tuple[str, ...]:
    """The statuses reachable from ``status``, in lifecycle order."""
    if status not in TRANSITIONS:
        raise ValueError(f"unknown alert status {status!r}; expected one of {STATUSES}")
    return tuple(s for s in STATUSES if s in TRANSITIONS[status])


def check_transition(alert_id: int, current: str, requested: str, hint: str = "") -> None:
    """Raise ``AlertTransitionError`` unless ``current -> requested`` is allowed."""
    if requested not in TRANSITIONS:
        raise ValueError(
            f"alert {alert_id}: unknown status {requested!r}; expected one of {STATUSES}"
        )
    if requested not in TRANSITIONS[current]:
        raise AlertTransitionError(alert_id, current, requested, allowed_next(current), hint)


def due_at(level: str, at: pd.Timestamp) -> pd.Timestamp:
    """When an alert of ``level`` raised at ``at`` is due: ``DUE_DAYS[level]`` whole days
    counted from the start of the day after ``at``'s, to the end of the last one.

    A night is recorded at the end of its day (23:59:59.999999), when nobody can act:
    the time counts from the next morning. A red alert of the night of 30 June is due
    by the end of 1 July (overdue from 2 July 00:00), an orange one by the end of 3 July,
    a yellow one by the end of 7 July.
    """
    if level not in DUE_DAYS:
        raise ValueError(f"level {level!r} carries no due time; expected one of {tuple(DUE_DAYS)}")
    day = pd.Timestamp(at).normalize()
    return day + pd.Timedelta(days=DUE_DAYS[level] + 1) - pd.Timedelta(microseconds=1)


def tighten_due(current_due: pd.Timestamp, level: str, at: pd.Timestamp) -> pd.Timestamp:
    """The due time after the level changes to ``level`` at ``at``: never later than now.

    A rise (say yellow to red) pulls the due time in; a fall, or a drop to blue (which
    has no due time), leaves it where it was.
    """
    if level not in DUE_DAYS:
        return pd.Timestamp(current_due)
    return min(pd.Timestamp(current_due), due_at(level, at))
