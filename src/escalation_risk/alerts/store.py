"""The alert store: score history, nightly runs, alerts and their audit trail.

One SQLAlchemy Core schema behind one URL: SQLite by default (a file, or ``sqlite://``
in memory), any SQLAlchemy URL (PostgreSQL) in production. The schema is made and
changed by Alembic migrations shipped in ``alerts/migrations`` (``upgrade_store``, or
``escalation-risk store upgrade``). An empty database is brought to the current schema
on first use; a store at an older schema is refused until it is upgraded (an upgrade
rewrites tables, so it is the operator's decision, after a backup), and a store written
by a newer version of this library is refused rather than silently misread.

What the store holds, and what it never holds: dispute ids, model versions, scores,
the reasons text the scoring layer wrote, and the names of the staff who act on an
alert. No person's name, id number or phone ever reaches it; the scoring layer hands
over pseudonymous dispute ids only, and ``record_night`` keeps only the columns it
knows.

The alerts layer sits below the command line and above scoring: it receives score
DataFrames and imports nothing from the model, scoring or nightly modules.

The store is split by noun; this module puts it together and keeps every name
importable from here: ``tables`` (the schema the code reads and writes), ``instants``
(the time type), ``connection`` (the engine), ``schema`` (the migrations glue),
``locking`` (the recording lock), ``recording`` (a night), ``actions`` (the lifecycle
actions), ``queries`` (reading), ``rows`` (rows in and out), ``errors``.
"""

from __future__ import annotations

from .actions import Actions
from .connection import _sqlite_begin, _sqlite_foreign_keys, connect
from .errors import (
    AlertNotFoundError,
    MissingDriverError,
    NightConflictError,
    SchemaVersionError,
    StoreBusyError,
    StoreKeyError,
    _driver_message,
    _url_for_messages,
)
from .instants import DEFAULT_TIMEZONE, TIMEZONE_ENV, _Instant, _zone
from .locking import _PG_LOCK_KEY
from .recording import NightSummary, Recording, _apply_alerts, _archive_run, _night_district, _summary_from_run
from .rows import (
    _CHUNK,
    _alert_id,
    _chunks,
    _dumps,
    _frame,
    _loads,
    _now,
    _one_or_many,
    _plain,
    _reasons_list,
    _require_text,
    _score_rows,
    _timestamp,
)
from .schema import (
    _MIGRATIONS_DIR,
    SCHEMA_VERSION,
    SchemaState,
    _read_state,
    _revision,
    _run_migrations,
    ensure_created,
    schema_state,
    upgrade_store,
)
from .tables import (
    _ALERT_COLUMNS,
    _DATETIME_COLUMNS,
    _EVENT_COLUMNS,
    _OUTCOME_COLUMNS,
    _RUN_COLUMNS,
    _SCORE_COLUMNS,
    alerts_table,
    events_table,
    metadata,
    replaced_runs_table,
    replaced_scores_table,
    runs_table,
    schema_version_table,
    scores_table,
)

__all__ = [
    "SCHEMA_VERSION",
    "AlertStore",
    "NightSummary",
    "AlertNotFoundError",
    "SchemaVersionError",
    "NightConflictError",
    "StoreBusyError",
    "StoreKeyError",
    "MissingDriverError",
    "SchemaState",
    "schema_state",
    "upgrade_store",
]

# Names kept importable from this module for callers and tests written before the split.
_REEXPORTED = (
    DEFAULT_TIMEZONE, TIMEZONE_ENV, _Instant, _zone, _PG_LOCK_KEY, _apply_alerts, _archive_run, _night_district,
    _summary_from_run, _CHUNK, _alert_id, _chunks, _dumps, _frame, _loads, _now, _one_or_many, _plain,
    _reasons_list, _require_text, _score_rows, _timestamp, _MIGRATIONS_DIR, _read_state, _revision,
    _run_migrations, _ALERT_COLUMNS, _DATETIME_COLUMNS, _EVENT_COLUMNS, _OUTCOME_COLUMNS, _RUN_COLUMNS,
    _SCORE_COLUMNS, alerts_table, events_table, metadata, replaced_runs_table, replaced_scores_table, runs_table,
    schema_version_table, scores_table, _sqlite_begin, _sqlite_foreign_keys, _driver_message,
)


class AlertStore(Recording, Actions):
    """Score history, nightly runs, alerts and their append-only audit trail.

    ``url`` is any SQLAlchemy URL: ``sqlite:///out/alerts.db`` (the folder is created),
    ``sqlite://`` in memory, or ``postgresql+psycopg://...`` in production. An empty
    database gets the current schema (by the migrations) on first use; a store at an
    older schema raises :class:`SchemaVersionError` saying to run ``escalation-risk store
    upgrade`` (see :func:`upgrade_store`). Use as a context manager, or call ``dispose``,
    to release the connection pool.
    """

    def __init__(self, url: str = "sqlite:///alerts.db", *, create: bool = True, timezone: str | None = None) -> None:
        self._connect(url, create=create, timezone=timezone)
        self._ensure_schema()

    def _connect(self, url: str, *, create: bool, timezone: str | None) -> None:
        self._lock_depth = {}
        self._thread_locks = {}
        self.url, self.timezone, self.engine = connect(url, create=create, timezone=timezone)

    def __repr__(self) -> str:
        return f"AlertStore({_url_for_messages(self.url)!r})"

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    def dispose(self) -> None:
        """Release the connection pool (an in-memory SQLite store is then gone).

        Named ``dispose`` because ``close`` closes an alert.
        """
        self.engine.dispose()

    def _ensure_schema(self) -> None:
        # A new store is made by the migrations, the one path to every schema.
        state = ensure_created(self.engine, self.url)
        if not state.up_to_date:
            raise SchemaVersionError(
                f"alert store {_url_for_messages(self.url)} is at schema version {state.version}, this "
                f"escalation_risk needs {SCHEMA_VERSION}: back it up, then run "
                f"`escalation-risk store upgrade --store {_url_for_messages(self.url)}`"
            )
