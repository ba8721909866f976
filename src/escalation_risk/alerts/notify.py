"""Alerts that reach people: webhook messages for new and rising alerts, and daily reminders.

Offices receive warnings through a chat or messaging platform's webhook (an HTTP POST to a
URL they configure). :class:`Notifier` turns the alert store's state into messages and
delivers them:

- :meth:`Notifier.queue_night`: one message per alert raised on a night and per alert that
  rose a level that night, at or above ``min_level`` (orange by default);
- :meth:`Notifier.queue_reminders`: the daily review (日结日清): one message per owner with
  their overdue alerts and those due that day, and one summary for the office;
- :meth:`Notifier.deliver`: POSTs what is pending, with a timeout on every request,
  retries with backoff inside the run, and a circuit breaker so that a dead endpoint costs
  a few timeouts, never the night.

Every message is first written to the store's ``notifications`` table under a unique key
(the alert and night, or the owner and day), then sent, then marked delivered. A re-run of
a night or of a day's reminders queues nothing new, and a crash after recording leaves the
messages pending for the next :meth:`Notifier.deliver` (``escalation-risk alerts deliver``).
Delivery is at least once: a crash between the POST and its acknowledgement sends that one
message again, with the same ``message_id``, so a receiver that keeps ids drops the copy.

Each request is signed: ``X-Escalation-Risk-Timestamp`` (Unix seconds) and
``X-Escalation-Risk-Signature: sha256=HMAC(secret, timestamp + "." + body)``.
:func:`verify_signature` is the receiver's check (it rejects stale timestamps, so a
captured message cannot be replayed later).

Bodies carry the pseudonymous dispute id, level, trend, probability, reasons, plan, due
time and owner: never a name, id number, phone, description or note. Reasons are the
registry's sentences and pass through :func:`~escalation_risk.masking.mask_identifiers` all the same.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from .. import clock as _clock
from ..masking import mask_identifiers
from ..response import PLANS
from .lifecycle import ACTIVE_STATUSES, LEVEL_RANK
from .store import AlertStore

__all__ = ["Webhook", "Notifier", "DeliveryReport", "sign", "verify_signature",
           "SHAPES", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "notifications_table"]

SIGNATURE_HEADER = "X-Escalation-Risk-Signature"
TIMESTAMP_HEADER = "X-Escalation-Risk-Timestamp"
SHAPES = ("json", "wecom", "dingtalk", "feishu")

LEVEL_ZH = {"red": "红色", "orange": "橙色", "yellow": "黄色", "blue": "蓝色"}
TREND_ZH = {"rising": "上升", "steady": "持平", "falling": "下降", "new": "新增"}

# The store's own tables are the store's business; the delivery log lives in its own
# metadata, and is created with them by the store's migrations (revision 0004).
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
    sa.Column("status", sa.String(16), nullable=False),  # pending | delivered
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_attempt_at", sa.DateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("delivered_at", sa.DateTime, nullable=True),
    sa.Index("ix_notifications_status", "status"),
)

def _utc_naive(value: Any) -> datetime:
    """A naive UTC datetime (the store's instants may come back aware or naive)."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_pydatetime()


def _iso(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).isoformat()


def sign(body: bytes, secret: bytes, timestamp: int) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(body: bytes, headers: Any, secret: bytes, *, tolerance_s: int = 300,
                     now: float | None = None) -> bool:
    """A receiver's check: the signature matches and the timestamp is within ``tolerance_s``
    of ``now`` (so a captured message cannot be replayed later). ``headers`` is any mapping
    with ``get`` (case as sent)."""
    try:
        ts = int(headers.get(TIMESTAMP_HEADER))
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance_s:
        return False
    given = headers.get(SIGNATURE_HEADER) or ""
    return hmac.compare_digest(given, sign(body, secret, ts))


@dataclass(frozen=True)
class Webhook:
    """Where and how to POST: ``url``, the signing ``secret``, a per-request ``timeout_s``, and
    the payload ``shape``: ``json`` (the default, the whole message), or the text-message
    shape of a common office platform's group-bot webhook (``wecom``, ``dingtalk``,
    ``feishu``: the ready-to-show Chinese ``text``, with the same HMAC headers; those
    platforms' own URL signing is not done here)."""

    url: str
    secret: bytes | None = None
    timeout_s: float = 5.0
    shape: str = "json"

    def __post_init__(self) -> None:
        if not re.match(r"^https?://", self.url or ""):
            raise ValueError(f"notify URL: expected http:// or https://, got {self.url!r}")
        if self.shape not in SHAPES:
            raise ValueError(f"shape: expected one of {SHAPES}, got {self.shape!r}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s: expected a positive number, got {self.timeout_s!r}")

    def render(self, message: dict[str, Any]) -> bytes:
        """The request body for ``message`` in this webhook's shape."""
        if self.shape == "json":
            payload: dict[str, Any] = message
        elif self.shape in ("wecom", "dingtalk"):
            payload = {"msgtype": "text", "text": {"content": message["text"]}}
        else:
            payload = {"msg_type": "text", "content": {"text": message["text"]}}
        return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")

    def post(self, body: bytes, *, now: float | None = None) -> None:
        """POST ``body``; raises on a timeout, a refused connection or a non-2xx answer."""
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "escalation-risk"}
        if self.secret:
            ts = int(time.time() if now is None else now)
            headers[TIMESTAMP_HEADER] = str(ts)
            headers[SIGNATURE_HEADER] = sign(body, self.secret, ts)
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 (URL checked above)
            if not 200 <= resp.status < 300:
                raise urllib.error.HTTPError(self.url, resp.status, "not a 2xx answer", resp.headers, None)


@dataclass
class DeliveryReport:
    """What one :meth:`Notifier.deliver` did: messages ``delivered``, still ``pending``
    (failed this time, or not tried after the circuit opened) and the last ``errors``."""

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
    costs at most that many timeouts. ``sleep`` and ``clock`` are injectable for tests.
    """

    def __init__(self, store: AlertStore, webhook: Webhook, *, min_level: str = "orange", retries: int = 3,
                 backoff_s: float = 0.5, max_consecutive_failures: int = 3,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], datetime] | None = None) -> None:
        if min_level not in LEVEL_RANK or min_level == "blue":
            raise ValueError(f"min_level: expected red, orange or yellow, got {min_level!r}")
        if retries < 1 or max_consecutive_failures < 1:
            raise ValueError("retries and max_consecutive_failures must be at least 1")
        self.store = store
        self.webhook = webhook
        self.min_level = min_level
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_consecutive_failures = max_consecutive_failures
        self._sleep = sleep
        # The kernel's clock: naive local time in the store's zone, like every time the store keeps.
        self._clock = clock or (lambda: _clock.now().floor("s").to_pydatetime())

    # -- queueing ---------------------------------------------------------------

    def _enqueue(self, messages: Iterable[dict[str, Any]]) -> int:
        """Insert messages whose key is not yet in the log; returns how many were new."""
        msgs = list(messages)
        if not msgs:
            return 0
        n = notifications_table
        now = self._clock()
        with self.store.engine.begin() as conn:
            known = set(conn.execute(sa.select(n.c.key).where(n.c.key.in_([m["message_id"] for m in msgs]))).scalars())
            rows = [{"key": m["message_id"], "kind": m["type"], "alert_id": m.get("alert_id"),
                     "owner": m.get("owner"), "body": json.dumps(m, ensure_ascii=False, sort_keys=True),
                     "created_at": now, "status": "pending", "attempts": 0}
                    for m in msgs if m["message_id"] not in known]
            if rows:
                conn.execute(sa.insert(n), rows)
        return len(rows)

    def night_messages(self, as_of: Any) -> list[dict[str, Any]]:
        """The messages of night ``as_of``: alerts raised that night, and alerts whose level
        rose since the dispute's previous recorded night, at or above ``min_level``."""
        night = _utc_naive(as_of)
        events = self.store.events()
        if events.empty:
            return []
        at = pd.to_datetime(events["at"], utc=True).dt.tz_localize(None)
        tonight = events[(at == pd.Timestamp(night)) & events["event"].isin(["raised", "updated"])]
        if tonight.empty:
            return []
        raised = set(tonight.loc[tonight["event"] == "raised", "alert_id"].astype(int))
        runs = self.store.runs()
        run_nights = pd.to_datetime(runs["as_of"], utc=True).dt.tz_localize(None) if len(runs) else pd.Series([])
        earlier = run_nights[run_nights < pd.Timestamp(night)]
        before: dict[str, str] = {}
        if len(earlier):
            prev = self.store.scores(as_of=runs.loc[earlier.idxmax(), "as_of"])
            before = dict(zip(prev["dispute_id"].astype(str), prev["level"].astype(str)))
        out = []
        for alert_id in sorted(set(tonight["alert_id"].astype(int))):
            alert = self.store.alert(alert_id)
            level = str(alert["level"])
            if LEVEL_RANK[level] < LEVEL_RANK[self.min_level]:
                continue
            if alert_id in raised:
                kind = "new"
            else:
                was = before.get(str(alert["dispute_id"]))
                if was is None or LEVEL_RANK[level] <= LEVEL_RANK[was]:
                    continue
                kind = "rising"
            out.append(alert_message(alert, night, kind=kind, previous_level=None if kind == "new" else was))
        return out

    def queue_night(self, as_of: Any) -> int:
        """Queue the messages of night ``as_of`` (see :meth:`night_messages`); idempotent."""
        return self._enqueue(self.night_messages(as_of))

    def reminder_messages(self, at: Any = None) -> list[dict[str, Any]]:
        """The daily review at ``at`` (default now): per owner their overdue alerts and those
        due that day, and one office summary (open alerts by level, overdue by owner)."""
        when = _utc_naive(at) if at is not None else self._clock()
        day = pd.Timestamp(when).normalize()
        open_ = self.store.alerts(status="open")
        active = open_[open_["status"].isin(ACTIVE_STATUSES)].copy()
        due = pd.to_datetime(active["due_at"], utc=True).dt.tz_localize(None)
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
        """Messages not yet delivered, oldest first (key, kind, attempts, last_error)."""
        n = notifications_table
        q = sa.select(n.c.notification_id, n.c.key, n.c.kind, n.c.alert_id, n.c.owner, n.c.attempts,
                      n.c.last_attempt_at, n.c.last_error).where(n.c.status == "pending").order_by(n.c.notification_id)
        with self.store.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).mappings().all(),
                                columns=["notification_id", "key", "kind", "alert_id", "owner", "attempts",
                                         "last_attempt_at", "last_error"])

    def log(self) -> pd.DataFrame:
        """Every queued message with its delivery state (no bodies)."""
        n = notifications_table
        cols = [c for c in n.columns if c.name != "body"]
        with self.store.engine.connect() as conn:
            return pd.DataFrame(conn.execute(sa.select(*cols).order_by(n.c.notification_id)).mappings().all(),
                                columns=[c.name for c in cols])

    def deliver(self) -> DeliveryReport:
        """POST every pending message, oldest first, recording each attempt."""
        n = notifications_table
        with self.store.engine.connect() as conn:
            todo = conn.execute(sa.select(n.c.notification_id, n.c.body).where(n.c.status == "pending")
                                .order_by(n.c.notification_id)).all()
        report = DeliveryReport()
        failures_in_row = 0
        for i, (nid, body) in enumerate(todo):
            if failures_in_row >= self.max_consecutive_failures:
                report.pending += len(todo) - i
                break
            payload = self.webhook.render(json.loads(body))
            error = None
            for attempt in range(self.retries):
                report.attempts += 1
                try:
                    self.webhook.post(payload)
                    error = None
                except (urllib.error.URLError, OSError, ValueError) as e:  # timeouts are OSErrors
                    error = _describe(e)
                if error is None:
                    failures_in_row = 0
                    break
                failures_in_row += 1
                if failures_in_row >= self.max_consecutive_failures or attempt == self.retries - 1:
                    break
                self._sleep(self.backoff_s * 2 ** attempt)
            self._record_attempt(nid, attempts=attempt + 1, error=error)
            if error is None:
                report.delivered += 1
            else:
                report.pending += 1
                report.errors.append(error)
        return report

    def _record_attempt(self, nid: int, *, attempts: int, error: str | None) -> None:
        n = notifications_table
        now = self._clock()
        values: dict[str, Any] = {"attempts": n.c.attempts + attempts, "last_attempt_at": now, "last_error": error}
        if error is None:
            values.update(status="delivered", delivered_at=now)
        with self.store.engine.begin() as conn:
            conn.execute(sa.update(n).where(n.c.notification_id == nid).values(**values))

    def notify_night(self, as_of: Any) -> DeliveryReport:
        """Queue the night's messages and deliver everything pending."""
        self.queue_night(as_of)
        return self.deliver()

    def remind(self, at: Any = None) -> DeliveryReport:
        """Queue the day's reminders and deliver everything pending."""
        self.queue_reminders(at)
        return self.deliver()


def _describe(e: BaseException) -> str:
    """A short error for the log: the kind and the status, never the request body."""
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code}"
    if isinstance(e, urllib.error.URLError):
        return f"unreachable: {type(e.reason).__name__}: {e.reason}"[:200]
    return f"{type(e).__name__}: {e}"[:200]


def _reminder_item(r: dict[str, Any], state: str) -> dict[str, Any]:
    return {"alert_id": int(r["alert_id"]), "dispute_id": str(r["dispute_id"]), "level": str(r["level"]),
            "status": str(r["status"]), "due_at": _iso(r["due_at"]) or "", "state": state}


def alert_message(alert: dict[str, Any], night: datetime, *, kind: str,
                  previous_level: str | None = None) -> dict[str, Any]:
    """The JSON message for one alert on one night (``kind``: ``new`` or ``rising``)."""
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
    msg: dict[str, Any] = {
        "message_id": f"alert:{alert['alert_id']}:{night:%Y-%m-%dT%H:%M:%S}:{level}",
        "type": "alert", "event": kind, "alert_id": int(alert["alert_id"]), "dispute_id": str(alert["dispute_id"]),
        "night": night.isoformat(), "level": level, "level_zh": LEVEL_ZH[level], "previous_level": previous_level,
        "trend": str(alert["trend"]), "probability": round(p, 4), "reasons": reasons, "reasons_zh": reasons_zh,
        "plan": str(alert["plan"]), "plan_en": plan.en if plan else None, "plan_zh": plan.zh if plan else None,
        "due_at": due, "owner": str(alert["owner"]), "text": mask_identifiers("\n".join(lines)),
    }
    if alert.get("district") is not None:
        msg["district"] = str(alert["district"])
    return msg
