"""Alerts that reach people: webhook messages for new and rising alerts, and daily reminders.

Offices receive warnings through a chat or messaging platform's webhook (an HTTP POST to a
URL they configure). :class:`Notifier` turns the alert store's state into messages and
delivers them:

- :meth:`Notifier.queue_night`: one message per alert raised on a night and per alert that
  rose a level that night, at or above ``min_level`` (orange by default);
- :meth:`Notifier.queue_reminders`: the daily review (日结日清): one message per owner with
  their overdue alerts and those due that day, and one summary for the office;
- :meth:`Notifier.deliver`: POSTs what is pending (``httpx``), with a timeout on every
  request, retries with exponential backoff inside the run (``tenacity``), and a circuit
  breaker so that a dead endpoint costs a few timeouts, never the night.

Exactly once per message id. Every message is first written to the store's
``notifications`` table under a unique key (the alert and night, or the owner and day)
with insert-or-ignore, so two runs queueing the same night at once add it once. Its body
is frozen then: a night's message carries that night's level, trend, reasons and plan
(from the night's scores), so queueing an old night again sends that night's picture under
that night's key, never today's. A deliverer *claims* a message before it POSTs (one
statement: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a status transition on SQLite, whose
writers are serialised), so two deliverers at once never send the same message. A
deliverer killed between the POST and its mark leaves the message claimed; once its
lease (``lease_s``) has passed, the next run sends it again under the same ``webhook-id``,
and a receiver that keeps ids drops the copy (:mod:`.webhook`: Standard Webhooks headers on
every shape).

"Rising" compares the night's level with the same dispute's previous recorded score in
the same district (dispute ids are unique only inside a district).

Bodies carry only the fields declared in :data:`BODY_FIELDS` (the allow-list's
``webhook_<type>`` outputs in :mod:`escalation_risk.outputs`): the pseudonymous dispute id,
level, trend, probability, reasons, plan, due time and owner; never a name, id number,
phone, description or note. Reasons are the registry's sentences and pass through
:func:`~escalation_risk.masking.mask_identifiers` all the same.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pandas as pd
import sqlalchemy as sa
import tenacity
from sqlalchemy.dialects import postgresql, sqlite

from .. import clock as _clock
from ..masking import mask_identifiers
from ..outputs import output
from ..response import PLANS
from .lifecycle import ACTIVE_STATUSES, LEVEL_RANK
from .rows import _frame, _loads
from .store import AlertStore
from .tables import alerts_table, events_table, scores_table
from .webhook import (
    ID_HEADER,
    MIN_SECRET_BYTES,
    SHAPES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryError,
    Webhook,
    WebhookSecretError,
    shown_url,
    verify,
    verify_signature,
)

__all__ = ["Webhook", "Notifier", "DeliveryReport", "WebhookSecretError", "DeliveryError", "verify",
           "verify_signature", "shown_url", "webhook_id", "alert_message", "BODY_FIELDS", "SHAPES",
           "MIN_SECRET_BYTES", "ID_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "notifications_table"]

LEVEL_ZH = {"red": "红色", "orange": "橙色", "yellow": "黄色", "blue": "蓝色"}
TREND_ZH = {"rising": "上升", "steady": "持平", "falling": "下降", "new": "新增"}

#: Every field a webhook body may carry, per message type: read from the allow-list
#: (escalation_risk.outputs, ``webhook_<type>``), the one place they are declared; a
#: builder producing any other field fails.
BODY_FIELDS: dict[str, tuple[str, ...]] = {
    t: output(f"webhook_{t}").columns for t in ("alert", "reminder", "summary")}
#: The fields of one alert inside a reminder's ``alerts``.
ITEM_FIELDS: tuple[str, ...] = output("webhook_reminder_item").columns

# The store's own tables are the store's business; the delivery log lives in its own
# metadata, and is created with them by the store's migrations (revisions 0004, 0005).
_metadata = sa.MetaData()
notifications_table = sa.Table(
    "notifications",
    _metadata,
    sa.Column("notification_id", sa.Integer, primary_key=True, autoincrement=True),
    # What makes a message unique: re-queuing the same key is a no-op.
    sa.Column("key", sa.String(255), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),  # alert | reminder | summary
    sa.Column("alert_id", sa.Integer, nullable=True),
    sa.Column("owner", sa.String(128), nullable=True),
    sa.Column("body", sa.Text, nullable=False),  # the JSON payload, before any platform shape
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | sending | delivered
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_attempt_at", sa.DateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("delivered_at", sa.DateTime, nullable=True),
    # The id every send of this message carries (webhook-id), fixed at queueing (schema 5).
    sa.Column("webhook_id", sa.String(64), nullable=False),
    # The deliverer that holds the message (status sending) and since when (schema 5).
    sa.Column("claim", sa.String(32), nullable=True),
    sa.Column("claimed_at", sa.DateTime, nullable=True),
    sa.Index("ix_notifications_status", "status"),
    sa.Index("uq_notifications_webhook_id", "webhook_id", unique=True),
)


def webhook_id(key: str) -> str:
    """The id a message queued under ``key`` travels under: ASCII, stable, and without the
    owner's name a reminder's key holds (the same rule as migration 0005's)."""
    return "er_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


def _night(value: Any) -> datetime:
    """A night as the store keeps it: naive local time (an aware value converted to the zone)."""
    return _clock.localize(pd.Timestamp(value)).to_pydatetime()


def _iso(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).isoformat()


def _declared(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` with exactly its type's :data:`BODY_FIELDS`; an undeclared field is a bug."""
    allowed = BODY_FIELDS[message["type"]]
    extra = sorted(set(message) - set(allowed))
    if extra:
        raise ValueError(f"webhook body of type {message['type']!r}: fields {extra} are not declared in BODY_FIELDS")
    return {k: message.get(k) for k in allowed}


class _CircuitOpen(tenacity.stop.stop_base):
    """Stop retrying once the run's failures in a row reach the notifier's limit."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self.notifier._circuit_open()


@dataclass
class DeliveryReport:
    """What one :meth:`Notifier.deliver` did: messages ``delivered`` by this run, still
    ``pending`` in the store when it ended (failed, not tried after the circuit opened, or
    held by another deliverer), the ``attempts`` made, and the last ``errors``."""

    delivered: int = 0
    pending: int = 0
    attempts: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is left pending."""
        return self.pending == 0

    def __str__(self) -> str:
        tail = f"; last error: {self.errors[-1]}" if self.errors else ""
        return f"{self.delivered} delivered, {self.pending} pending ({self.attempts} attempts){tail}"


class Notifier:
    """Queue and deliver alert messages for one store and one webhook.

    ``min_level``: messages for alerts at or above it (``orange``: red and orange).
    ``retries``: attempts per message within one delivery run, ``backoff_s`` the first
    pause between them (doubling). ``max_consecutive_failures``: after that many failed
    requests in a row the run stops trying and leaves the rest pending, so a dead endpoint
    costs at most that many timeouts. ``lease_s``: a message claimed longer ago than this
    by a deliverer that never marked it (it died) is claimed again and resent under the
    same id; keep it above the longest one message can take (``retries`` timeouts and
    backoffs). ``sleep`` and ``clock`` are injectable for tests.
    """

    def __init__(self, store: AlertStore, webhook: Webhook, *, min_level: str = "orange", retries: int = 3,
                 backoff_s: float = 0.5, max_consecutive_failures: int = 3, lease_s: float = 600.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], datetime] | None = None) -> None:
        if min_level not in LEVEL_RANK or min_level == "blue":
            raise ValueError(f"min_level: expected red, orange or yellow, got {min_level!r}")
        if retries < 1 or max_consecutive_failures < 1:
            raise ValueError("retries and max_consecutive_failures must be at least 1")
        if lease_s < 0:
            raise ValueError(f"lease_s: expected a number of seconds >= 0, got {lease_s!r}")
        self.store = store
        self.webhook = webhook
        self.min_level = min_level
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_consecutive_failures = max_consecutive_failures
        self.lease_s = lease_s
        self._sleep = sleep
        self._failures_in_row = 0
        # The kernel's clock: naive local time in the store's zone, like every time the store keeps.
        self._clock = clock or (lambda: _clock.now().to_pydatetime())

    def __repr__(self) -> str:
        return f"Notifier({self.store!r}, {self.webhook!r}, min_level={self.min_level!r})"

    # -- queueing ---------------------------------------------------------------

    def _enqueue(self, messages: Iterable[dict[str, Any]]) -> int:
        """Insert messages whose key is not yet in the log (insert-or-ignore: two runs at once
        add each key once); returns how many this call added."""
        n = notifications_table
        now = self._clock()
        rows = []
        for m in messages:
            key = m["message_id"]
            body = _declared({**m, "message_id": webhook_id(key)})
            rows.append({"key": key, "webhook_id": body["message_id"], "kind": m["type"],
                         "alert_id": m.get("alert_id"), "owner": m.get("owner"),
                         "body": json.dumps(body, ensure_ascii=False, sort_keys=True),
                         "created_at": now, "status": "pending", "attempts": 0})
        if not rows:
            return 0
        dialect = self.store.engine.dialect.name
        insert: Any
        if dialect == "postgresql":
            insert = postgresql.insert(n)
        elif dialect == "sqlite":
            insert = sqlite.insert(n)
        else:
            raise NotImplementedError(f"the notification queue runs on SQLite and PostgreSQL, not {dialect}")
        stmt = insert.on_conflict_do_nothing(index_elements=[n.c.key]).returning(n.c.key)
        added = 0
        with self.store.engine.begin() as conn:
            for i in range(0, len(rows), 500):
                added += len(conn.execute(stmt, rows[i:i + 500]).all())
        return added

    def night_messages(self, as_of: Any) -> list[dict[str, Any]]:
        """The messages of night ``as_of``: alerts raised that night, and alerts whose level
        that night rose above the same dispute's previous recorded score (same district), at
        or above ``min_level``. Level, trend, reasons and plan are the night's scores."""
        night = _night(as_of)
        a, e, s = alerts_table, events_table, scores_table
        with self.store.engine.connect() as conn:
            tonight = conn.execute(
                sa.select(a.c.alert_id, a.c.district, a.c.dispute_id, a.c.owner, a.c.due_at, e.c.event)
                .join(e, e.c.alert_id == a.c.alert_id)
                .where(e.c.at == night, e.c.event.in_(["raised", "updated"]))
                .order_by(a.c.alert_id, e.c.event_id)).mappings().all()
            if not tonight:
                return []
            wanted = sorted({(r["district"], r["dispute_id"]) for r in tonight})
            cols = [s.c[c] for c in ("district", "dispute_id", "model_version", "probability", "level", "trend",
                                     "reasons", "reasons_zh", "plan")]
            night_scores = {}
            for district in sorted({d for d, _ in wanted}):
                ids = [i for d, i in wanted if d == district]
                for i in range(0, len(ids), 500):
                    for r in conn.execute(sa.select(*cols).where(
                            s.c.as_of == night, s.c.district == district,
                            s.c.dispute_id.in_(ids[i:i + 500])).order_by(s.c.score_id)).mappings():
                        night_scores[(r["district"], r["dispute_id"])] = dict(r)
        raised = {r["alert_id"] for r in tonight if r["event"] == "raised"}
        before = self._previous_levels(wanted, night)
        out = []
        for alert_id in sorted({r["alert_id"] for r in tonight}):
            alert = next(r for r in tonight if r["alert_id"] == alert_id)
            where = (alert["district"], alert["dispute_id"])
            score = night_scores.get(where)
            if score is None:  # the alert moved with a later night's score, not this one's
                continue
            level = str(score["level"])
            if LEVEL_RANK[level] < LEVEL_RANK[self.min_level]:
                continue
            was = before.get(where)
            if alert_id in raised:
                kind = "new"
            elif was is None or LEVEL_RANK[level] <= LEVEL_RANK[was]:
                continue
            else:
                kind = "rising"
            frozen = {**dict(alert), **score, "alert_id": alert_id,
                      "reasons": _loads(score["reasons"]), "reasons_zh": _loads(score["reasons_zh"])}
            out.append(alert_message(frozen, night, kind=kind, previous_level=None if kind == "new" else was))
        return out

    def _previous_levels(self, wanted: list[tuple[str, str]], night: datetime) -> dict[tuple[str, str], str]:
        """Each (district, dispute)'s level at its latest recorded score before ``night``."""
        out: dict[tuple[str, str], str] = {}
        for district in sorted({d for d, _ in wanted}):
            prev = self.store.previous_scores([i for d, i in wanted if d == district], before=night,
                                              district=district)
            out.update({(district, str(i)): str(lvl) for i, lvl in zip(prev["dispute_id"], prev["level"])})
        return out

    def queue_night(self, as_of: Any) -> int:
        """Queue the messages of night ``as_of`` (see :meth:`night_messages`); idempotent."""
        return self._enqueue(self.night_messages(as_of))

    def reminder_messages(self, at: Any = None) -> list[dict[str, Any]]:
        """The daily review at ``at`` (default now): per owner their overdue alerts and those
        due that day, and one office summary (open alerts by level, overdue by owner)."""
        when = _night(at) if at is not None else self._clock()
        day = pd.Timestamp(when).normalize()
        open_ = self.store.alerts(status="open")
        active = open_[open_["status"].isin(ACTIVE_STATUSES)].copy()
        due = pd.to_datetime(active["due_at"])
        active["overdue"] = due < pd.Timestamp(when)
        active["due_today"] = (~active["overdue"]) & (due < day + pd.Timedelta(days=1))
        out: list[dict[str, Any]] = []
        for owner, grp in sorted(active.groupby("owner"), key=lambda kv: str(kv[0])):
            od, today = grp[grp["overdue"]], grp[grp["due_today"]]
            if od.empty and today.empty:
                continue
            items = [_reminder_item(r, "overdue") for r in od.to_dict("records")] + \
                    [_reminder_item(r, "due_today") for r in today.to_dict("records")]
            text = (f"【预警督办】{owner}：您有逾期预警 {len(od)} 条、今日到期预警 {len(today)} 条，请及时处置。\n"
                    + "\n".join(f"- 纠纷 {i['dispute_id']}（{LEVEL_ZH[i['level']]}，"
                                f"{'已逾期' if i['state'] == 'overdue' else '今日到期'}，期限 {i['due_at'][:16]}）"
                                for i in items))
            out.append({"message_id": f"reminder:{owner}:{day:%Y-%m-%d}", "type": "reminder", "owner": str(owner),
                        "day": f"{day:%Y-%m-%d}", "overdue": len(od), "due_today": len(today), "alerts": items,
                        "text": mask_identifiers(text)})
        by_level = {lvl: int((open_["level"] == lvl).sum()) for lvl in ("red", "orange", "yellow", "blue")}
        overdue_by_owner = {str(k): int(v) for k, v in active[active["overdue"]].groupby("owner").size().items()}
        levels = "，".join(f"{LEVEL_ZH[k]} {v}" for k, v in by_level.items())
        who = "，".join(f"{k} {v}" for k, v in sorted(overdue_by_owner.items()))
        text = (f"【日结日清】{day:%Y-%m-%d} 在办预警 {len(open_)} 条（{levels}）；"
                f"逾期 {sum(overdue_by_owner.values())} 条" + (f"：{who}" if who else "") + "。")
        out.append({"message_id": f"summary:{day:%Y-%m-%d}", "type": "summary", "day": f"{day:%Y-%m-%d}",
                    "open_by_level": by_level, "overdue_by_owner": overdue_by_owner,
                    "text": mask_identifiers(text)})
        return out

    def queue_reminders(self, at: Any = None) -> int:
        """Queue the daily review at ``at`` (see :meth:`reminder_messages`); idempotent per day."""
        return self._enqueue(self.reminder_messages(at))

    # -- delivery ---------------------------------------------------------------

    def pending(self) -> pd.DataFrame:
        """Messages not yet delivered, oldest first (key, kind, status, attempts, last_error)."""
        n = notifications_table
        cols = ["notification_id", "key", "webhook_id", "kind", "alert_id", "owner", "status", "attempts",
                "last_attempt_at", "last_error"]
        q = sa.select(*(n.c[c] for c in cols)).where(n.c.status != "delivered").order_by(n.c.notification_id)
        with self.store.engine.connect() as conn:
            return _frame(conn.execute(q), cols)

    def log(self) -> pd.DataFrame:
        """Every queued message with its delivery state (no bodies)."""
        n = notifications_table
        cols = [c for c in n.columns if c.name != "body"]
        with self.store.engine.connect() as conn:
            return _frame(conn.execute(sa.select(*cols).order_by(n.c.notification_id)), [c.name for c in cols])

    def _claim(self, token: str) -> tuple[int, str, str] | None:
        """Claim the oldest message free to send (pending, or claimed by a deliverer whose lease
        has passed) in one statement; returns (notification_id, webhook_id, body) or None."""
        n = notifications_table
        now = self._clock()
        free = sa.or_(n.c.status == "pending",
                      sa.and_(n.c.status == "sending", n.c.claimed_at <= now - timedelta(seconds=self.lease_s)))
        pick = sa.select(n.c.notification_id).where(free).order_by(n.c.notification_id).limit(1)
        if self.store.engine.dialect.name == "postgresql":
            # A row another deliverer is claiming right now is skipped, not waited for.
            pick = pick.with_for_update(skip_locked=True)
        # "= (SELECT ...)", not "IN (SELECT ...)": PostgreSQL may run an IN subquery once per
        # row it scans, and with SKIP LOCKED each run picks another row, claiming them all.
        stmt = (sa.update(n).where(n.c.notification_id == pick.scalar_subquery(), free)
                .values(status="sending", claim=token, claimed_at=now)
                .returning(n.c.notification_id, n.c.webhook_id, n.c.body))
        # BEGIN IMMEDIATE on SQLite: the claim is a write from its first statement.
        with self.store.engine.connect().execution_options(sqlite_immediate=True) as conn, conn.begin():
            row = conn.execute(stmt).first()
        return None if row is None else (int(row[0]), str(row[1]), str(row[2]))

    def deliver(self) -> DeliveryReport:
        """Claim and POST every message free to send, oldest first, recording each attempt.

        Raises :class:`WebhookSecretError` before claiming anything when the webhook has no
        secret: an unsigned message is never sent."""
        self.webhook.require_secret()
        token = uuid.uuid4().hex
        report = DeliveryReport()
        self._failures_in_row = 0
        with httpx.Client(follow_redirects=False, trust_env=False) as client:
            while not self._circuit_open():
                claimed = self._claim(token)
                if claimed is None:
                    break
                nid, wid, body = claimed
                tries, error = self._send(client, wid, self.webhook.render(json.loads(body)))
                report.attempts += tries
                self._mark(nid, token, attempts=tries, error=error)
                if error is None:
                    report.delivered += 1
                else:
                    report.errors.append(error)
        n = notifications_table
        with self.store.engine.connect() as conn:
            report.pending = int(conn.execute(sa.select(sa.func.count()).select_from(n)
                                              .where(n.c.status != "delivered")).scalar_one())
        return report

    def _circuit_open(self) -> bool:
        return self._failures_in_row >= self.max_consecutive_failures

    def _send(self, client: httpx.Client, wid: str, payload: bytes) -> tuple[int, str | None]:
        """POST one message with retries and backoff (tenacity), stopping early when the
        circuit opens; returns the attempts made and the last error (None: sent)."""
        tries = 0

        def attempt() -> None:
            nonlocal tries
            tries += 1
            try:
                self.webhook.post(client, wid, payload)
            except DeliveryError:
                self._failures_in_row += 1
                raise
            self._failures_in_row = 0

        try:
            tenacity.Retrying(
                stop=tenacity.stop_after_attempt(self.retries) | _CircuitOpen(self),
                wait=tenacity.wait_exponential(multiplier=self.backoff_s, exp_base=2),
                retry=tenacity.retry_if_exception_type(DeliveryError),
                sleep=self._sleep, reraise=True,
            )(attempt)
        except DeliveryError as e:
            return tries, str(e)
        return tries, None

    def _mark(self, nid: int, token: str, *, attempts: int, error: str | None) -> None:
        """Record one message's attempts: delivered, or back to pending for the next run."""
        n = notifications_table
        now = self._clock()
        values: dict[str, Any] = {"attempts": n.c.attempts + attempts, "last_attempt_at": now,
                                  "last_error": error, "claim": None, "claimed_at": None}
        if error is None:
            # Sent: delivered, even if a deliverer that took over the claim meanwhile sends it
            # too (the same webhook-id: the receiver drops that copy).
            stmt = sa.update(n).where(n.c.notification_id == nid, n.c.status != "delivered")
            values.update(status="delivered", delivered_at=now)
        else:
            stmt = sa.update(n).where(n.c.notification_id == nid, n.c.claim == token)
            values.update(status="pending")
        with self.store.engine.begin() as conn:
            conn.execute(stmt.values(**values))

    def notify_night(self, as_of: Any) -> DeliveryReport:
        """Queue the night's messages and deliver everything pending."""
        self.queue_night(as_of)
        return self.deliver()

    def remind(self, at: Any = None) -> DeliveryReport:
        """Queue the day's reminders and deliver everything pending."""
        self.queue_reminders(at)
        return self.deliver()


def _reminder_item(r: dict[str, Any], state: str) -> dict[str, Any]:
    item = {"alert_id": int(r["alert_id"]), "dispute_id": str(r["dispute_id"]), "level": str(r["level"]),
            "status": str(r["status"]), "due_at": _iso(r["due_at"]) or "", "state": state}
    return {k: item[k] for k in ITEM_FIELDS}


def alert_message(alert: dict[str, Any], night: datetime, *, kind: str,
                  previous_level: str | None = None) -> dict[str, Any]:
    """The JSON message for one alert on one night (``kind``: ``new`` or ``rising``), from
    ``alert`` holding the night's level, probability, trend, reasons and plan and the
    alert's id, district, dispute, owner and due time. ``message_id`` is the queue's key
    (district, dispute, night and level: one alert per dispute and night)."""
    level = str(alert["level"])
    plan = PLANS.get(str(alert["plan"]))
    reasons = [mask_identifiers(r) for r in (alert.get("reasons") or [])][:3]
    reasons_zh = [mask_identifiers(r) for r in (alert.get("reasons_zh") or [])][:3]
    due = _iso(alert.get("due_at"))
    p = float(alert["probability"])
    head = "新增预警" if kind == "new" else f"预警升级（{LEVEL_ZH.get(previous_level or '', '')}→{LEVEL_ZH[level]}）"
    lines = [f"【{LEVEL_ZH[level]}{head}】纠纷 {alert['dispute_id']}：转为刑事案件的概率约 {p:.0%}，"
             f"趋势{TREND_ZH.get(str(alert['trend']), str(alert['trend']))}。"]
    if reasons_zh:
        lines.append("主要原因：" + "；".join(reasons_zh) + "。")
    if plan is not None:
        lines.append("处置方案：" + plan.zh)
    lines.append(f"责任人：{alert['owner']}；处置期限：{(due or '')[:16]}。")
    district = str(alert.get("district") or "")
    return {
        # The queue's key names the night's alert by what it is, not by its row number: a
        # night recorded again after a crash may number its alerts differently (PostgreSQL).
        "message_id": f"alert:{district}:{alert['dispute_id']}:{night:%Y-%m-%dT%H:%M:%S}:{level}",
        "type": "alert", "event": kind, "alert_id": int(alert["alert_id"]),
        "district": district, "dispute_id": str(alert["dispute_id"]),
        "night": night.isoformat(), "level": level, "level_zh": LEVEL_ZH[level], "previous_level": previous_level,
        "trend": str(alert["trend"]), "probability": round(p, 4), "reasons": reasons, "reasons_zh": reasons_zh,
        "plan": str(alert["plan"]), "plan_en": plan.en if plan else None, "plan_zh": plan.zh if plan else None,
        "due_at": due, "owner": str(alert["owner"]), "text": mask_identifiers("\n".join(lines)),
    }
