"""Opening a store's engine: the URL, the zone, the SQLite pragmas and transactions."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from .. import clock
from .errors import MissingDriverError, _driver_message


def _sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # Transactions are begun by _sqlite_begin, not implicitly by the driver.
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: sa.Connection) -> None:
    # A night takes the write lock when it starts (BEGIN IMMEDIATE): two nights that
    # began as readers could not both upgrade, and one would fail instead of waiting.
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")



def connect(url: str, *, create: bool, timezone: str | None) -> tuple[sa.URL, ZoneInfo, sa.Engine]:
    """The parsed URL, the store's zone and a new engine for the store at ``url``.

    A SQLite file's folder is made (``create``), or a missing file refused (not
    ``create``): reading a store that is not there is a typo in the path, not a reason
    to make an empty one.
    """
    parsed = sa.make_url(url)
    zone = clock.zone(timezone)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        db = parsed.database
        if db and db != ":memory:" and not db.startswith("file:"):
            if not create and not Path(db).expanduser().is_file():
                raise FileNotFoundError(f"alert store {db} does not exist")
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # Nights of several districts may write at once: SQLite makes them queue
    # (for up to a minute) instead of failing at once with "database is locked".
    # hide_parameters: a failed statement's message would otherwise quote its rows
    # (notes typed at the desk, handlers' names) into logs and tracebacks.
    try:
        engine = sa.create_engine(parsed, connect_args={"timeout": 60} if sqlite else {},
                                  hide_parameters=True)
    except (ModuleNotFoundError, sa.exc.NoSuchModuleError) as e:
        raise MissingDriverError(_driver_message(parsed, e)) from None
    engine.dialect._escalation_risk_zone = zone  # type: ignore[attr-defined]
    if sqlite:
        # SQLite ignores foreign keys unless asked, per connection; and its driver's
        # own transaction handling is replaced by ours (see _sqlite_begin).
        sa.event.listen(engine, "connect", _sqlite_foreign_keys)
        sa.event.listen(engine, "begin", _sqlite_begin)
    return parsed, zone, engine


class StoreBase:
    """What every part of :class:`~escalation_risk.alerts.store.AlertStore` shares: the URL,
    the zone, the engine and the recording lock's bookkeeping."""

    url: sa.URL
    timezone: ZoneInfo
    engine: sa.Engine
    _lock_depth: dict[str, int]
    _thread_locks: dict[str, threading.Lock]
