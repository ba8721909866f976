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
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import sqlalchemy as sa

from .. import clock
from ..masking import mask_identifiers
from .lifecycle import (
    ACTIVE_STATUSES,
    DUE_DAYS,
    FOLLOW_UP_STATUSES,
    LEVEL_RANK,
    LEVELS,
    OPEN_STATUSES,
    STATUSES,
    TRENDS,
    AlertTransitionError,
    allowed_next,
    check_transition,
    due_at,
    tighten_due,
)

__all__ = [
    "SCHEMA_VERSION",
    "AlertStore",
    "NightSummary",
    "AlertNotFoundError",
    "SchemaVersionError",
    "NightConflictError",
    "StoreBusyError",
    "MissingDriverError",
    "SchemaState",
    "schema_state",
    "upgrade_store",
]

#: The schema this release reads and writes. Each version is one Alembic revision in
#: ``alerts/migrations/versions`` (revision id ``000N``); bump both together.
#: 1: the first release. 2: the input fingerprint of a run, Chinese reasons, the archive
#: of replaced nights. 3: a ``district`` in every key (a province's districts share one
#: store) and timezone-aware timestamps. 4: the ``notifications`` delivery log.
SCHEMA_VERSION = 4
_MIGRATIONS_DIR = Path(__file__).with_name("migrations")

#: The zone of the naive local times the library reads and hands back (contract: naive
#: local time); the store itself holds instants (UTC).
TIMEZONE_ENV = clock.TIMEZONE_ENV
DEFAULT_TIMEZONE = clock.DEFAULT_TIMEZONE

# One advisory lock key for "recording a night" in a PostgreSQL store.
_PG_LOCK_KEY = 0x65725F6E69676874  # "er_night"
# SQLite caps the number of bound parameters per statement; IN lists are chunked.
_CHUNK = 500



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
        if isinstance(value, str):  # a raw SQLite value read without the type
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(_zone(dialect)).replace(tzinfo=None)


def _zone(dialect: sa.Dialect) -> ZoneInfo:
    zone = getattr(dialect, "_escalation_risk_zone", None)
    return zone if zone is not None else ZoneInfo(DEFAULT_TIMEZONE)


def _district_column() -> sa.Column:
    # '' for a single district's store: NULL would not take part in unique keys.
    return sa.Column("district", sa.String(64), nullable=False, server_default="", default="")


metadata = sa.MetaData()

schema_version_table = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", _Instant, nullable=False),
)

scores_table = sa.Table(
    "scores",
    metadata,
    sa.Column("score_id", sa.Integer, primary_key=True, autoincrement=True),
    _district_column(),
    sa.Column("dispute_id", sa.String(128), nullable=False),
    sa.Column("as_of", _Instant, nullable=False),
    sa.Column("model_version", sa.String(128), nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("trend", sa.String(16), nullable=False),
    sa.Column("delta", sa.Float, nullable=True),
    sa.Column("reasons", sa.Text, nullable=False),  # JSON list of str
    sa.Column("plan", sa.Text, nullable=False),
    sa.Column("reasons_zh", sa.Text, nullable=True),  # JSON list of str (schema 2)
    sa.UniqueConstraint("district", "dispute_id", "as_of", "model_version", name="uq_scores_dispute_night"),
    sa.Index("ix_scores_dispute_as_of", "district", "dispute_id", "as_of"),
)

runs_table = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    _district_column(),
    sa.Column("as_of", _Instant, nullable=False),
    sa.Column("model_version", sa.String(128), nullable=False),
    sa.Column("started_at", _Instant, nullable=False),
    sa.Column("finished_at", _Instant, nullable=True),
    sa.Column("n_scored", sa.Integer, nullable=False, default=0),
    *(sa.Column(f"n_{lvl}", sa.Integer, nullable=False, default=0) for lvl in LEVELS),
    sa.Column("n_new_alerts", sa.Integer, nullable=False, default=0),
    sa.Column("n_updated_alerts", sa.Integer, nullable=False, default=0),
    sa.Column("n_rising", sa.Integer, nullable=False, default=0),
    sa.Column("n_overdue", sa.Integer, nullable=False, default=0),
    # SHA-256 of the night's input (data and settings), to tell a re-run from a correction (schema 2).
    sa.Column("input_fingerprint", sa.String(64), nullable=True),
    sa.UniqueConstraint("district", "as_of", "model_version", name="uq_runs_night"),
)

# A night recorded again on a corrected export (``replace=True``) moves its first
# recording here, run and scores, so the audit trail keeps what was seen then (schema 2).
def _columns_like(table: sa.Table, skip: str) -> list[sa.Column]:
    """Fresh columns of the same names and types (no keys, no constraints)."""
    return [sa.Column(c.name, c.type, nullable=c.nullable) for c in table.columns if c.name != skip]


replaced_runs_table = sa.Table(
    "replaced_runs",
    metadata,
    sa.Column("replaced_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("replaced_at", _Instant, nullable=False),
    sa.Column("replaced_by_fingerprint", sa.String(64), nullable=True),
    sa.Column("old_run_id", sa.Integer, nullable=False),
    *_columns_like(runs_table, "run_id"),
)
replaced_scores_table = sa.Table(
    "replaced_scores",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("replaced_id", sa.Integer, sa.ForeignKey("replaced_runs.replaced_id"), nullable=False),
    *_columns_like(scores_table, "score_id"),
)

alerts_table = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.Integer, primary_key=True, autoincrement=True),
    _district_column(),
    sa.Column("dispute_id", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(128), nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("trend", sa.String(16), nullable=False),
    sa.Column("delta", sa.Float, nullable=True),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("plan", sa.Text, nullable=False),
    sa.Column("reasons_zh", sa.Text, nullable=True),  # schema 2
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("raised_by", sa.String(128), nullable=False),
    sa.Column("raised_at", _Instant, nullable=False),
    sa.Column("due_at", _Instant, nullable=False),
    sa.Column("updated_at", _Instant, nullable=False),
    # When the status last changed: follow-up reminders count from here.
    sa.Column("status_at", _Instant, nullable=False),
    # The night of the score the alert currently shows; older nights never overwrite it.
    sa.Column("last_as_of", _Instant, nullable=False),
    sa.Column("closed_at", _Instant, nullable=True),
    sa.Column("outcome", sa.Text, nullable=True),
    sa.Column("escalated_to_crime", sa.Boolean, nullable=True),
    sa.Index("ix_alerts_status", "status"),
)
# One open alert per (district, dispute), enforced by the database itself (a partial unique index
# on both SQLite and PostgreSQL), so even a buggy caller cannot open a second one.
sa.Index(
    "uq_alerts_one_open_per_dispute",
    alerts_table.c.district,
    alerts_table.c.dispute_id,
    unique=True,
    sqlite_where=alerts_table.c.status != "closed",
    postgresql_where=alerts_table.c.status != "closed",
)

events_table = sa.Table(
    "alert_events",
    metadata,
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.alert_id"), nullable=False),
    sa.Column("at", _Instant, nullable=False),
    sa.Column("who", sa.String(128), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),  # raised/updated/assigned/status/closed
    sa.Column("from_status", sa.String(16), nullable=True),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(128), nullable=False),  # the owner after the event
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Index("ix_alert_events_alert", "alert_id"),
)

# The audit trail is append-only; the database refuses edits, not just this code.
for _op in ("UPDATE", "DELETE"):
    sa.event.listen(
        events_table,
        "after_create",
        sa.DDL(
            f"CREATE TRIGGER alert_events_no_{_op.lower()} BEFORE {_op} ON alert_events "
            "BEGIN SELECT RAISE(ABORT, 'alert_events is append-only'); END"
        ).execute_if(dialect="sqlite"),
    )
sa.event.listen(
    events_table,
    "after_create",
    sa.DDL(
        "CREATE OR REPLACE FUNCTION alert_events_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'alert_events is append-only'; END $$"
    ).execute_if(dialect="postgresql"),
)
sa.event.listen(
    events_table,
    "after_create",
    sa.DDL(
        "CREATE TRIGGER alert_events_no_change BEFORE UPDATE OR DELETE ON alert_events "
        "FOR EACH ROW EXECUTE FUNCTION alert_events_append_only()"
    ).execute_if(dialect="postgresql"),
)



_SCORE_COLUMNS = (
    "district", "dispute_id", "as_of", "model_version", "probability", "level", "trend", "delta",
    "reasons", "plan", "reasons_zh",
)
_ALERT_COLUMNS = tuple(c.name for c in alerts_table.columns)
_EVENT_COLUMNS = tuple(c.name for c in events_table.columns)
_RUN_COLUMNS = tuple(c.name for c in runs_table.columns)
_OUTCOME_COLUMNS = (
    "district", "dispute_id", "alert_id", "raised_at", "closed_at", "outcome", "escalated_to_crime",
)
_DATETIME_COLUMNS = frozenset(
    {"as_of", "started_at", "finished_at", "raised_at", "due_at", "updated_at",
     "status_at", "last_as_of", "closed_at", "at", "applied_at", "replaced_at"}
)


class AlertNotFoundError(LookupError):
    """No alert with the given id in the store."""

    def __init__(self, alert_id: Any) -> None:
        self.alert_id = alert_id
        super().__init__(f"alert {alert_id}: no such alert in the store")


class SchemaVersionError(RuntimeError):
    """The store's schema is of a version this library cannot read or migrate."""


class NightConflictError(ValueError):
    """A night that cannot be recorded as asked: its input differs from the recorded
    one (use ``replace``), or it is older than the newest recorded night (use
    ``backfill``)."""


class MissingDriverError(RuntimeError):
    """The database driver a store URL needs is not installed; the message names the extra."""


def _driver_message(url: sa.URL, e: BaseException) -> str:
    backend = url.get_backend_name()
    extra = {"postgresql": "postgres"}.get(backend)
    how = (f"install it with: pip install 'escalation-risk[{extra}]'" if extra
           else "install the driver this URL names")
    return f"alert store {_url_for_messages(url)}: the {url.drivername} database driver is not installed ({e}); {how}"


class StoreBusyError(RuntimeError):
    """Another process holds the store's recording lock."""


@dataclass(frozen=True)
class NightSummary:
    """What one nightly run did to the store.

    ``by_level`` counts the disputes scored at each level; ``rising`` counts scored
    disputes whose trend is rising; ``overdue`` counts open, unresolved alerts past
    due at ``as_of``. ``already_recorded`` is true when this night had been recorded
    before and nothing changed (the counts are those of the first recording).
    """

    as_of: pd.Timestamp
    model_version: str
    n_scored: int
    by_level: dict[str, int] = field(default_factory=dict)
    new_alerts: int = 0
    updated_alerts: int = 0
    rising: int = 0
    overdue: int = 0
    already_recorded: bool = False
    district: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (as_of as ISO text), for JSON output and logs."""
        out = asdict(self)
        out["as_of"] = pd.Timestamp(self.as_of).isoformat()
        return out

    def __str__(self) -> str:
        levels = ", ".join(f"{k} {v}" for k, v in self.by_level.items())
        again = " (already recorded; nothing changed)" if self.already_recorded else ""
        where = f"district {self.district} " if self.district else ""
        return (
            f"{where}{pd.Timestamp(self.as_of):%Y-%m-%d} model {self.model_version}: "
            f"{self.n_scored} scored ({levels}); {self.new_alerts} new alerts, "
            f"{self.updated_alerts} updated, {self.rising} rising, {self.overdue} overdue"
            f"{again}"
        )


# ---------------------------------------------------------------------------
# small helpers


def _timestamp(value: Any, name: str) -> datetime:
    """A naive local datetime by the one moment rule (:func:`escalation_risk.clock.to_moment`:
    a date is the end of that day, an offset converted to the zone)."""
    return clock.to_moment(value, what=name).to_pydatetime()


def _now(at: Any, name: str = "at") -> datetime:
    """``at``, or now in the configured zone (the kernel's clock, never the host's local time)."""
    return clock.now().floor("s").to_pydatetime() if at is None else _timestamp(at, name)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _reasons_list(value: Any, where: str) -> list[str]:
    """Reasons as a list of str, from a list, an array, a JSON string or nothing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{where}: column 'reasons' must be a list of str or a JSON list, "
                f"got {value!r}"
            ) from exc
    if isinstance(value, (list, tuple, np.ndarray)):
        out = list(value)
        if all(isinstance(r, str) for r in out):
            return out
    raise ValueError(
        f"{where}: column 'reasons' must be a list of str or a JSON list, got {value!r}"
    )


def _dumps(reasons: list[str]) -> str:
    # ensure_ascii=False keeps Chinese reasons readable in the database itself.
    return json.dumps(reasons, ensure_ascii=False)


def _loads(text: Any) -> list[str]:
    return json.loads(text) if isinstance(text, str) and text else []


def _frame(rows: Iterable[Any], columns: Sequence[str]) -> pd.DataFrame:
    """A DataFrame from result rows with stable columns and dtypes, even when empty."""
    df = pd.DataFrame([tuple(r) for r in rows], columns=list(columns))
    for col in df.columns:
        if col in _DATETIME_COLUMNS:
            df[col] = pd.to_datetime(df[col])
        elif col in ("reasons", "reasons_zh"):
            df[col] = pd.Series([_loads(v) for v in df[col]], index=df.index, dtype=object)
        elif col == "escalated_to_crime":
            df[col] = df[col].astype("boolean")
        elif col in ("probability", "delta"):
            df[col] = df[col].astype(float)
    return df


def _plain(value: Any) -> Any:
    """Python scalars for a dict handed to callers (pd.Timestamp for times)."""
    if isinstance(value, datetime):
        return pd.Timestamp(value)
    return value


def _score_rows(scores: pd.DataFrame, night: datetime) -> list[dict[str, Any]]:
    """Validate the nightly scores and turn them into plain row dicts."""
    if not isinstance(scores, pd.DataFrame):
        raise TypeError(f"scores: expected a pandas DataFrame, got {type(scores).__name__}")
    required = ("dispute_id", "probability", "level", "trend", "reasons", "plan")
    missing = [c for c in required if c not in scores.columns]
    if missing:
        raise ValueError(
            f"scores: missing required column(s) {missing}; got {list(scores.columns)}"
        )
    if scores.empty:
        return []

    def fail(col: str, mask: pd.Series, rule: str) -> None:
        bad = scores.index[mask.to_numpy()]
        if len(bad):
            first = bad[0]
            raise ValueError(
                f"scores: column '{col}' row {first!r} value {scores.at[first, col]!r} "
                f"breaks rule: {rule} ({len(bad)} row(s) in all)"
            )

    fail("dispute_id", scores["dispute_id"].isna(), "required")
    ids = scores["dispute_id"].astype(str)
    fail("dispute_id", ids.duplicated(keep="first"), "one score per dispute per night")
    if "as_of" in scores.columns:
        as_of = pd.to_datetime(scores["as_of"], errors="coerce")
        fail("as_of", as_of.isna() | (as_of != pd.Timestamp(night)), f"equals the night's as_of {night}")
    prob = pd.to_numeric(scores["probability"], errors="coerce")
    fail("probability", prob.isna() | (prob < 0) | (prob > 1), "a number in [0, 1]")
    fail("level", ~scores["level"].isin(LEVELS), f"one of {LEVELS}")
    fail("trend", ~scores["trend"].isin(TRENDS), f"one of {TRENDS}")
    if "delta" in scores.columns:
        delta = pd.to_numeric(scores["delta"], errors="coerce")
        fail("delta", delta.isna() & scores["delta"].notna(), "a number or missing")
    else:
        delta = pd.Series(np.nan, index=scores.index)
    # Plain lists: per-row .iloc on 50,000 disputes costs seconds.
    plans = ["" if p is None or (not isinstance(p, str) and pd.isna(p)) else str(p)
             for p in scores["plan"].tolist()]
    reasons = [_dumps(_reasons_list(r, f"scores row {idx!r}"))
               for idx, r in zip(scores.index, scores["reasons"].tolist())]
    zh = scores["reasons_zh"].tolist() if "reasons_zh" in scores.columns else [None] * len(scores)
    reasons_zh = [_dumps(_reasons_list(r, f"scores row {idx!r}")) for idx, r in zip(scores.index, zh)]
    deltas = [None if pd.isna(d) else float(d) for d in delta.tolist()]
    rows = [
        {"dispute_id": did, "probability": float(p), "level": str(lvl), "trend": str(tr),
         "delta": d, "reasons": r, "plan": pl, "reasons_zh": rz}
        for did, p, lvl, tr, d, r, pl, rz in zip(
            ids.tolist(), prob.tolist(), scores["level"].tolist(), scores["trend"].tolist(),
            deltas, reasons, plans, reasons_zh,
        )
    ]
    return rows


def _url_for_messages(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)


# ---------------------------------------------------------------------------
# the store


class AlertStore:
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
        self._lock_depth: dict[str, int] = {}
        self._thread_locks: dict[str, threading.Lock] = {}
        self.url = sa.make_url(url)
        self.timezone = clock.zone(timezone)
        sqlite = self.url.get_backend_name() == "sqlite"
        if sqlite:
            db = self.url.database
            if db and db != ":memory:" and not db.startswith("file:"):
                if not create and not Path(db).expanduser().is_file():
                    # Reading a store that is not there is a mistake (a typo in the path),
                    # not a reason to make an empty one.
                    raise FileNotFoundError(f"alert store {db} does not exist")
                Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # Nights of several districts may write at once: SQLite makes them queue
        # (for up to a minute) instead of failing at once with "database is locked".
        try:
            self.engine = sa.create_engine(self.url, connect_args={"timeout": 60} if sqlite else {})
        except (ModuleNotFoundError, sa.exc.NoSuchModuleError) as e:
            raise MissingDriverError(_driver_message(self.url, e)) from None
        self.engine.dialect._escalation_risk_zone = self.timezone  # type: ignore[attr-defined]
        if sqlite:
            # SQLite ignores foreign keys unless asked, per connection; and its driver's
            # own transaction handling is replaced by ours (see _sqlite_begin).
            sa.event.listen(self.engine, "connect", _sqlite_foreign_keys)
            sa.event.listen(self.engine, "begin", _sqlite_begin)

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

    # -- schema --------------------------------------------------------------

    def _ensure_schema(self) -> None:
        with self.engine.begin() as conn:
            state = _read_state(conn, self.url)
            if state.empty:  # a new store: made by the migrations, the one path to every schema
                _run_migrations(conn, state)
                return
        if not state.up_to_date:
            raise SchemaVersionError(
                f"alert store {_url_for_messages(self.url)} is at schema version {state.version}, this "
                f"escalation_risk needs {SCHEMA_VERSION}: back it up, then run "
                f"`escalation-risk store upgrade --store {_url_for_messages(self.url)}`"
            )

    @property
    def schema_version(self) -> int:
        """The schema version recorded in the store."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(schema_version_table.c.version))).scalar_one())

    # -- the nightly run -------------------------------------------------------

    def record_night(
        self,
        scores: pd.DataFrame,
        as_of: Any,
        model_version: str,
        *,
        alert_levels: Sequence[str] = ("red", "orange", "yellow"),
        raised_by: str = "system",
        input_fingerprint: str | None = None,
        replace: bool = False,
        backfill: bool = False,
        district: str | None = None,
    ) -> NightSummary:
        """Record one night's scores and raise or update alerts, all in one transaction.

        ``district`` names the district of a province the night is for (default: the
        one value of the scores' ``district`` column, else ``""``, a lone district).
        Each district's night is its own transaction and is idempotent on its own;
        nights of different districts may be recorded at the same time.

        ``scores`` has columns dispute_id, probability, level, trend, reasons, plan
        and optionally as_of (must equal ``as_of``) and delta. Recording the same
        night (``as_of`` and ``model_version``) again changes nothing and returns the
        first recording's summary with ``already_recorded=True``.

        A dispute reaching a level in ``alert_levels`` without an open alert gets one,
        owned by ``raised_by``. An open alert follows its dispute's latest score; a
        change of level or trend is logged as an ``updated`` event, a rise in level
        tightens the due time, and a drop to blue leaves the alert open for a person
        to close.

        ``input_fingerprint`` identifies the night's input. A night already recorded
        from the same input is a no-op; from a different one it raises
        :class:`NightConflictError` unless ``replace``, which moves the first
        recording (run and scores) to ``replaced_runs``/``replaced_scores`` and
        records this one. A night older than the newest recorded night is refused
        unless ``backfill``: its trends would be computed against the wrong night.
        The whole step holds the store's recording lock (:meth:`recording_lock`).
        """
        night = _timestamp(as_of, "as_of")
        if not isinstance(model_version, str) or not model_version:
            raise ValueError(f"model_version: expected a non-empty str, got {model_version!r}")
        bad = [lvl for lvl in alert_levels if lvl not in DUE_DAYS]
        if bad:
            raise ValueError(
                f"alert_levels: {bad} cannot raise alerts; expected a subset of {tuple(DUE_DAYS)}"
            )
        district = _night_district(scores, district)
        rows = _score_rows(scores, night)
        started = _now(None)

        with self.recording_lock(district=district), \
                self.engine.connect().execution_options(sqlite_immediate=True) as conn, conn.begin():
            done = conn.execute(
                sa.select(runs_table).where(
                    runs_table.c.district == district,
                    runs_table.c.as_of == night, runs_table.c.model_version == model_version,
                )
            ).mappings().first()
            if done is not None:
                same = input_fingerprint is None or done["input_fingerprint"] in (None, input_fingerprint)
                if same and not replace:
                    return _summary_from_run(done, already_recorded=True)
                if not replace:
                    raise NightConflictError(
                        f"night {night.isoformat()} was recorded at {_fmt(done['started_at'])} from different "
                        f"input (fingerprint {str(done['input_fingerprint'])[:12]}, this input "
                        f"{input_fingerprint[:12] if input_fingerprint else None}); nothing was written. "
                        "If the export was corrected, record it again with replace (--replace): the first "
                        "recording stays in the audit trail")
                _archive_run(conn, dict(done), input_fingerprint, started)
            newest = conn.execute(sa.select(sa.func.max(runs_table.c.as_of))
                                  .where(runs_table.c.district == district)).scalar()
            if newest is not None and night < newest and not backfill:
                raise NightConflictError(
                    f"night {night.isoformat()} is older than the newest recorded night {newest.isoformat()}; "
                    "its trends would be computed against the wrong night. Record it with backfill "
                    "(--backfill) if that is what you mean")

            inserted = conn.execute(
                sa.insert(runs_table).values(district=district, as_of=night, model_version=model_version,
                                             started_at=started, input_fingerprint=input_fingerprint)
            ).inserted_primary_key
            assert inserted is not None  # an INSERT of one row always has one
            run_id = inserted[0]
            if rows:
                conn.execute(
                    sa.insert(scores_table),
                    [dict(r, district=district, as_of=night, model_version=model_version) for r in rows],
                )
            new, updated = _apply_alerts(conn, rows, night, model_version, tuple(alert_levels), raised_by,
                                         district)
            overdue = conn.execute(
                sa.select(sa.func.count()).select_from(alerts_table).where(
                    alerts_table.c.district == district,
                    alerts_table.c.status.in_(ACTIVE_STATUSES), alerts_table.c.due_at < night,
                )
            ).scalar_one()
            by_level = {lvl: sum(r["level"] == lvl for r in rows) for lvl in LEVELS}
            rising = sum(r["trend"] == "rising" for r in rows)
            conn.execute(
                sa.update(runs_table)
                .where(runs_table.c.run_id == run_id)
                .values(
                    finished_at=_now(None),
                    n_scored=len(rows),
                    n_new_alerts=new,
                    n_updated_alerts=updated,
                    n_rising=rising,
                    n_overdue=overdue,
                    **{f"n_{lvl}": n for lvl, n in by_level.items()},
                )
            )
        return NightSummary(
            as_of=pd.Timestamp(night),
            model_version=model_version,
            n_scored=len(rows),
            by_level=by_level,
            new_alerts=new,
            updated_alerts=updated,
            rising=rising,
            overdue=overdue,
            district=district,
        )

    @contextmanager
    def recording_lock(self, timeout: float = 0.0, district: str = "") -> Iterator[None]:
        """Hold the store's recording lock of a district: one night at a time per district.

        A SQLite file store locks ``<file>.lock`` (``<file>.<district>.lock`` for a
        district of a province), PostgreSQL takes a session advisory lock keyed by the
        district, an in-memory store a process lock. Nights of different districts
        do not wait for each other here (the database orders their writes).
        Re-entrant within one store object, so the nightly job can hold it from
        reading the previous scores to recording. Raises :class:`StoreBusyError` after
        ``timeout`` seconds.
        """
        if self._lock_depth.get(district):
            self._lock_depth[district] += 1
            try:
                yield
            finally:
                self._lock_depth[district] -= 1
            return
        release = self._acquire(timeout, district)
        self._lock_depth[district] = 1
        try:
            yield
        finally:
            self._lock_depth[district] = 0
            release()

    def _acquire(self, timeout: float, district: str = "") -> Callable[[], None]:
        deadline = time.monotonic() + timeout
        busy = (f"another night is being recorded in alert store {_url_for_messages(self.url)}; "
                "try again when it has finished")
        backend = self.url.get_backend_name()
        db = self.url.database
        if backend == "sqlite" and db and db != ":memory:" and not db.startswith("file:"):
            import fcntl  # POSIX only, as are the servers this runs on

            suffix = f".{zlib.crc32(district.encode()):08x}.lock" if district else ".lock"
            f = open(Path(db).expanduser().with_name(Path(db).name + suffix), "a+")
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        f.close()
                        raise StoreBusyError(busy) from None
                    time.sleep(0.2)

            def unlock_file() -> None:
                fcntl.flock(f, fcntl.LOCK_UN)
                f.close()
            return unlock_file
        if backend == "postgresql":
            conn = self.engine.connect()
            key = _PG_LOCK_KEY ^ zlib.crc32(district.encode()) if district else _PG_LOCK_KEY
            while not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                if time.monotonic() >= deadline:
                    conn.close()
                    raise StoreBusyError(busy)
                time.sleep(0.2)

            def unlock_pg() -> None:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.close()
            return unlock_pg
        lock = self._thread_locks.setdefault(district, threading.Lock())
        got = lock.acquire(timeout=timeout) if timeout > 0 else lock.acquire(blocking=False)
        if not got:
            raise StoreBusyError(busy)
        return lock.release

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
                rows.extend(conn.execute(query))
        return _frame(rows, _SCORE_COLUMNS)

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


# ---------------------------------------------------------------------------
# the schema: Alembic revisions 0001..000N are schema versions 1..N


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


def schema_state(url: str) -> SchemaState:
    """The schema state of the store at ``url``, without changing it."""
    store = AlertStore.__new__(AlertStore)
    store._connect(url, create=False, timezone=None)
    try:
        with store.engine.connect() as conn:
            return _read_state(conn, store.url)
    finally:
        store.dispose()


def upgrade_store(url: str, *, timezone: str | None = None) -> tuple[SchemaState, SchemaState]:
    """Bring the store at ``url`` to this release's schema, in one transaction; returns
    the states before and after. Back the store up first: tables are rewritten.

    ``timezone`` is the zone of the naive local times a store before schema 3 holds
    (default: $ESCALATION_RISK_TIMEZONE, else Asia/Shanghai).
    """
    store = AlertStore.__new__(AlertStore)
    store._connect(url, create=True, timezone=timezone)
    try:
        with store.engine.begin() as conn:
            before = _read_state(conn, store.url)
            if not before.up_to_date:
                _run_migrations(conn, before)
        with store.engine.connect() as conn:
            return before, _read_state(conn, store.url)
    finally:
        store.dispose()


# ---------------------------------------------------------------------------
# internals of record_night and the lifecycle


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


def _night_district(scores: Any, district: str | None) -> str:
    """The district of one night's scores: the argument, else the scores' one value."""
    found: list[str] = []
    if isinstance(scores, pd.DataFrame) and "district" in scores.columns and len(scores):
        found = sorted({str(d) for d in scores["district"].dropna().unique()})
        if scores["district"].isna().any() or len(found) > 1 or (district is not None and found != [district]):
            raise ValueError(
                f"scores: column 'district' must hold the one district of the night "
                f"({district!r} given), got {found}{' and missing values' if scores['district'].isna().any() else ''}"
            )
    if district is None:
        district = found[0] if found else ""
    if not isinstance(district, str) or len(district) > 64:
        raise ValueError(f"district: expected a str of at most 64 characters, got {district!r}")
    return district


def _require_text(value: Any, name: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: expected a non-empty str, got {value!r}")


def _alert_id(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise AlertNotFoundError(value) from exc


def _one_or_many(value: str | Iterable[str], name: str, allowed: Sequence[str]) -> list[str]:
    values = [value] if isinstance(value, str) else list(value)
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"{name}: unknown value(s) {unknown}; expected some of {tuple(allowed)}")
    return values


def _summary_from_run(run: Any, *, already_recorded: bool) -> NightSummary:
    return NightSummary(
        as_of=pd.Timestamp(run["as_of"]),
        model_version=run["model_version"],
        n_scored=run["n_scored"],
        by_level={lvl: run[f"n_{lvl}"] for lvl in LEVELS},
        new_alerts=run["n_new_alerts"],
        updated_alerts=run["n_updated_alerts"],
        rising=run["n_rising"],
        overdue=run["n_overdue"],
        already_recorded=already_recorded,
        district=run["district"],
    )


def _archive_run(conn: sa.Connection, done: dict[str, Any], fingerprint: str | None, at: datetime) -> None:
    """Move a recorded night (run and scores) to the replaced_* tables."""
    inserted = conn.execute(sa.insert(replaced_runs_table).values(
        replaced_at=at, replaced_by_fingerprint=fingerprint, old_run_id=done["run_id"],
        **{k: v for k, v in done.items() if k != "run_id"})).inserted_primary_key
    assert inserted is not None
    replaced_id = inserted[0]
    s = scores_table
    night = (s.c.district == done["district"], s.c.as_of == done["as_of"],
             s.c.model_version == done["model_version"])
    cols = [c.name for c in s.columns if c.name != "score_id"]
    conn.execute(sa.insert(replaced_scores_table).from_select(
        ["replaced_id", *cols], sa.select(sa.literal(replaced_id), *(s.c[c] for c in cols)).where(*night)))
    conn.execute(sa.delete(s).where(*night))
    conn.execute(sa.delete(runs_table).where(runs_table.c.run_id == done["run_id"]))


def _fmt(ts: datetime) -> str:
    return f"{ts:%Y-%m-%d %H:%M}"


def _apply_alerts(
    conn: sa.Connection,
    rows: list[dict[str, Any]],
    night: datetime,
    model_version: str,
    alert_levels: tuple[str, ...],
    who: str,
    district: str = "",
) -> tuple[int, int]:
    """Raise new alerts and bring open ones up to tonight's scores; returns (new, updated)."""
    a = alerts_table
    open_alerts = {
        r["dispute_id"]: dict(r)
        for r in conn.execute(sa.select(a).where(a.c.status != "closed", a.c.district == district)).mappings()
    }
    to_raise: list[dict[str, Any]] = []
    to_update: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for r in rows:
        current = open_alerts.get(r["dispute_id"])
        if current is None:
            if r["level"] in alert_levels:
                to_raise.append(
                    {
                        **{k: r[k] for k in ("dispute_id", "level", "probability", "trend", "delta", "reasons",
                                             "plan", "reasons_zh")},
                        "model_version": model_version,
                        "district": district,
                        "status": "raised",
                        "owner": who,
                        "raised_by": who,
                        "raised_at": night,
                        "due_at": due_at(r["level"], night).to_pydatetime(),
                        "updated_at": night,
                        "status_at": night,
                        "last_as_of": night,
                    }
                )
            continue
        # A backfilled older night is kept in the score history but must not roll
        # an alert back to an older picture.
        if night < current["last_as_of"]:
            continue
        due = current["due_at"]
        if LEVEL_RANK[r["level"]] > LEVEL_RANK[current["level"]]:
            due = tighten_due(due, r["level"], night).to_pydatetime()
        changes = []
        if r["level"] != current["level"]:
            changes.append(f"level {current['level']} -> {r['level']}")
        if r["trend"] != current["trend"]:
            changes.append(f"trend {current['trend']} -> {r['trend']}")
        if due != current["due_at"]:
            changes.append(f"due {_fmt(current['due_at'])} -> {_fmt(due)}")
        to_update.append(
            {
                "b_alert_id": current["alert_id"],
                **{k: r[k] for k in ("level", "probability", "trend", "delta", "reasons", "plan", "reasons_zh")},
                "model_version": model_version,
                "due_at": due,
                "updated_at": night,
                "last_as_of": night,
            }
        )
        if changes:
            events.append(
                {
                    "alert_id": current["alert_id"],
                    "at": night,
                    "who": who,
                    "event": "updated",
                    "from_status": current["status"],
                    "to_status": current["status"],
                    "owner": current["owner"],
                    "note": "; ".join(changes),
                }
            )
    if to_update:
        conn.execute(
            # executemany: the SET clause takes the column keys of the parameter dicts.
            sa.update(a).where(a.c.alert_id == sa.bindparam("b_alert_id")),
            to_update,
        )
    if to_raise:
        conn.execute(sa.insert(a), to_raise)
        raised = {r["dispute_id"] for r in to_raise}
        by_dispute = {r["dispute_id"]: r for r in to_raise}
        new_ids = conn.execute(
            sa.select(a.c.alert_id, a.c.dispute_id).where(
                a.c.status == "raised", a.c.raised_at == night, a.c.district == district
            )
        ).all()
        for alert_id, dispute_id in sorted(new_ids):
            if dispute_id not in raised:
                continue
            r = by_dispute[dispute_id]
            events.append(
                {
                    "alert_id": alert_id,
                    "at": night,
                    "who": who,
                    "event": "raised",
                    "from_status": None,
                    "to_status": "raised",
                    "owner": who,
                    "note": f"{r['level']}, p={r['probability']:.2f}, trend {r['trend']}, model {model_version}",
                }
            )
    if events:
        conn.execute(sa.insert(events_table), events)
    return len(to_raise), sum(e["event"] == "updated" for e in events)
