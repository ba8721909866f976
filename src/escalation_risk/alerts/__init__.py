"""Alerts: the store of nightly scores and alerts, and the alert lifecycle.

``AlertStore`` records each night's scores, raises one alert per dispute at an alert
level, and follows it through the lifecycle in ``lifecycle`` (raised -> assigned ->
in_progress -> resolved | escalated -> follow_up -> closed) with an append-only audit
trail. This package receives DataFrames from the scoring layer and imports nothing
from it.
"""

from .lifecycle import (
    DUE_DAYS,
    LEVELS,
    OPEN_STATUSES,
    OUTCOMES,
    STATUSES,
    TRANSITIONS,
    TRENDS,
    AlertTransitionError,
    allowed_next,
    due_at,
)
from .store import (
    SCHEMA_VERSION,
    AlertNotFoundError,
    AlertStore,
    NightConflictError,
    NightSummary,
    SchemaVersionError,
    StoreBusyError,
    StoreKeyError,
)

__all__ = [
    "AlertStore",
    "NightSummary",
    "AlertTransitionError",
    "AlertNotFoundError",
    "SchemaVersionError",
    "NightConflictError",
    "StoreBusyError",
    "StoreKeyError",
    "SCHEMA_VERSION",
    "STATUSES",
    "OPEN_STATUSES",
    "TRANSITIONS",
    "LEVELS",
    "TRENDS",
    "DUE_DAYS",
    "OUTCOMES",
    "allowed_next",
    "due_at",
]
