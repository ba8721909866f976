"""The schema: Alembic revisions 0001..000N are schema versions 1..N."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from .connection import connect
from .errors import SchemaVersionError, _url_for_messages
from .tables import schema_version_table

#: The schema this release reads and writes. Each version is one Alembic revision in
#: ``alerts/migrations/versions`` (revision id ``000N``); bump both together.
#: 1: the first release. 2: the input fingerprint of a run, Chinese reasons, the archive
#: of replaced nights. 3: a ``district`` in every key (a province's districts share one
#: store) and timezone-aware timestamps. 4: the ``notifications`` delivery log. 5: delivery
#: claims and webhook ids, the pseudonym key's fingerprint of each run.
#: 6: the desk's users, sessions, service tokens and access log (escalation_risk.desk).
SCHEMA_VERSION = 6
_MIGRATIONS_DIR = Path(__file__).with_name("migrations")



@dataclass(frozen=True)
class SchemaState:
    """Where a store's schema stands: ``version`` (None for an empty database), the
    Alembic ``revision`` (None for a store made before Alembic, or an empty one)."""

    url: str
    version: int | None
    revision: str | None

    @property
    def empty(self) -> bool:
        """No store here yet: the migrations will make one."""
        return self.version is None and self.revision is None

    @property
    def up_to_date(self) -> bool:
        """At the schema this release reads and writes."""
        return self.version == SCHEMA_VERSION and self.revision == _revision(SCHEMA_VERSION)

    def __str__(self) -> str:
        if self.empty:
            return f"{self.url}: empty (the first use creates schema version {SCHEMA_VERSION})"
        where = f"revision {self.revision}" if self.revision else "made before Alembic migrations"
        status = ("up to date" if self.up_to_date else
                  f"needs `escalation-risk store upgrade --store {self.url}`" if (self.version or 0) < SCHEMA_VERSION
                  else "newer than this escalation_risk")
        return f"{self.url}: schema version {self.version} ({where}); this release: {SCHEMA_VERSION}, {status}"


def _revision(version: int) -> str:
    return f"{version:04d}"


def _read_state(conn: sa.Connection, url: sa.URL) -> SchemaState:
    """The store's schema state; a newer store than this release knows is refused here."""
    names = set(sa.inspect(conn).get_table_names())
    version = revision = None
    if "schema_version" in names:
        version = conn.execute(sa.select(sa.func.max(schema_version_table.c.version))).scalar()
    if "alembic_version" in names:
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    known = {_revision(v) for v in range(1, SCHEMA_VERSION + 1)}
    if (version is not None and version > SCHEMA_VERSION) or (revision is not None and revision not in known):
        raise SchemaVersionError(
            f"alert store {_url_for_messages(url)} has schema version {version}, newer than this "
            f"escalation_risk understands ({SCHEMA_VERSION}; Alembic revision {revision}, this release knows "
            f"up to {_revision(SCHEMA_VERSION)}); "
            "upgrade escalation_risk instead of writing to it"
        )
    return SchemaState(_url_for_messages(url), version, revision)


def _run_migrations(conn: sa.Connection, state: SchemaState) -> None:
    """Bring the store on ``conn`` to the head revision, in the caller's transaction."""
    from alembic import command
    from alembic.config import Config

    config = Config()  # built here: users need no alembic.ini
    config.set_main_option("script_location", str(_MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    if state.revision is None and state.version is not None:
        # A store made before Alembic: its schema_version says which revision it is at.
        command.stamp(config, _revision(state.version))
    command.upgrade(config, "head")


# A transaction-scoped advisory lock for changing a PostgreSQL store's schema.
_PG_SCHEMA_LOCK_KEY = 0x65725F736368656D  # "er_schem"


@contextmanager
def _schema_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that holds the store's schema lock from its start: two processes
    making or upgrading one store wait for each other instead of both creating tables
    (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped advisory lock)."""
    with engine.connect().execution_options(sqlite_immediate=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_SCHEMA_LOCK_KEY})
        yield conn


def ensure_created(engine: sa.Engine, url: sa.URL) -> SchemaState:
    """The store's state; an empty store is first brought to head by the migrations, once,
    even when several processes open it at the same moment."""
    with engine.connect() as conn:
        state = _read_state(conn, url)
    if not state.empty:
        return state  # the usual case: no lock taken, a reader never waits for a night
    with _schema_transaction(engine) as conn:
        state = _read_state(conn, url)  # again, under the lock: another process may have made it
        if state.empty:
            _run_migrations(conn, state)
        return _read_state(conn, url)


def schema_state(url: str) -> SchemaState:
    """The schema state of the store at ``url``, without changing it."""
    parsed, _zone, engine = connect(url, create=False, timezone=None)
    try:
        with engine.connect() as conn:
            return _read_state(conn, parsed)
    finally:
        engine.dispose()


def upgrade_store(url: str, *, timezone: str | None = None) -> tuple[SchemaState, SchemaState]:
    """Bring the store at ``url`` to this release's schema, in one transaction; returns
    the states before and after. Back the store up first: tables are rewritten.

    ``timezone`` is the zone of the naive local times a store before schema 3 holds
    (default: $ESCALATION_RISK_TIMEZONE, else Asia/Shanghai).
    """
    parsed, _zone, engine = connect(url, create=True, timezone=timezone)
    try:
        with _schema_transaction(engine) as conn:
            before = _read_state(conn, parsed)
            if not before.up_to_date:
                _run_migrations(conn, before)
        with engine.connect() as conn:
            return before, _read_state(conn, parsed)
    finally:
        engine.dispose()

