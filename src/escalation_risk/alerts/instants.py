"""Instants: naive local time in Python, an instant (UTC) in the database."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from .. import clock

#: The zone of the naive local times the library reads and hands back (contract: naive
#: local time); the store itself holds instants (UTC).
TIMEZONE_ENV = clock.TIMEZONE_ENV
DEFAULT_TIMEZONE = clock.DEFAULT_TIMEZONE


class _Instant(sa.types.TypeDecorator):
    """A moment in time: naive local time in Python, an instant in the database.

    PostgreSQL stores ``timestamp with time zone``; SQLite, which has no such type,
    stores UTC text. Naive values are read as local time in the store's zone (set on
    the engine's dialect by :class:`AlertStore`) and come back the same way, so the
    rest of the library keeps the contract's naive local times while the store keeps
    instants that any client, in any zone, reads right.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=_zone(dialect))
        value = value.astimezone(timezone.utc)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, datetime) and value.tzinfo is not None:
            # To UTC before the cache: psycopg hands timestamptz back in the session's zone,
            # where two instants of a DST repeated hour differ only in ``fold``, which
            # equality and hashing ignore, so the cache would take one for the other.
            value = value.astimezone(timezone.utc)
        return _local(value, _zone(dialect))


@lru_cache(maxsize=1 << 12)
def _local(value: Any, zone: ZoneInfo) -> datetime:
    """A stored instant (UTC if aware) as naive local time in ``zone``. Cached: a night's
    rows read back share a few instants (its as_of, its due times), converted once each."""
    if isinstance(value, str):  # a raw SQLite value read without the type
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(zone).replace(tzinfo=None)


def _zone(dialect: sa.Dialect) -> ZoneInfo:
    zone = getattr(dialect, "_escalation_risk_zone", None)
    return zone if zone is not None else ZoneInfo(DEFAULT_TIMEZONE)

