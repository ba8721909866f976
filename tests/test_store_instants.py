"""Stored instants read back as naive local time, right even in a DST zone's repeated hour."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from escalation_risk.alerts.instants import _Instant

NEW_YORK = ZoneInfo("America/New_York")


def test_two_instants_in_a_repeated_hour_read_back_apart():
    # psycopg hands timestamptz back in the session's zone: 01:30 EDT and 01:30 EST on
    # 2024-11-03 differ only in fold, so they compare and hash equal.
    first = datetime(2024, 11, 3, 1, 30, tzinfo=NEW_YORK)
    second = first.replace(fold=1)
    assert first == second and hash(first) == hash(second)
    dialect = sa.create_engine("sqlite://").dialect
    dialect._escalation_risk_zone = ZoneInfo("UTC")  # type: ignore[attr-defined]
    proc = _Instant().process_result_value
    assert proc(first, dialect) == datetime(2024, 11, 3, 5, 30)
    assert proc(second, dialect) == datetime(2024, 11, 3, 6, 30)
    assert proc(second.astimezone(timezone.utc), dialect) == datetime(2024, 11, 3, 6, 30)
