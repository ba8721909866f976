"""``escalation-risk alerts``: list, inspect and act on alerts from the command line.

A thin layer over ``AlertStore``. Every subcommand takes ``--store URL`` (default from
the environment variable ``ESCALATION_RISK_STORE``, else ``sqlite:///alerts.db``).
Exit codes: 0 ok; 1 a refused action or a store problem (unknown alert, illegal
transition, unreadable store), with one line on stderr; 2 bad arguments.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click
import pandas as pd
import sqlalchemy as sa

from .. import outputs
from ..alerts import (
    LEVELS,
    STATUSES,
    AlertNotFoundError,
    AlertStore,
    AlertTransitionError,
)
from .errors import EXIT_DELIVERY_PENDING, check_store_url, fail, open_store
from .params import MOMENT

STORE_ENV = "ESCALATION_RISK_STORE"
DEFAULT_STORE = "sqlite:///alerts.db"

# What a person needs to see in a terminal; csv and json carry every column.
_TABLE_COLUMNS = (
    "alert_id", "dispute_id", "level", "probability", "trend", "status", "owner",
    "raised_at", "due_at",
)


# ---------------------------------------------------------------------------
# options and plumbing


_check_url = check_store_url




def _store_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--store", "store_url", envvar=STORE_ENV, default=DEFAULT_STORE, show_default=True,
        metavar="URL", callback=_check_url,
        help=f"Alert store, a SQLAlchemy URL (env {STORE_ENV}).",
    )(f)


def _format_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
        show_default=True, help="Output format.",
    )(f)


_fail = fail


@contextmanager
def _opened(url: str) -> Iterator[AlertStore]:
    """The store at ``url``, which must exist (reading or acting on alerts never makes
    a new empty store); known failures become one line on stderr and exit 1."""
    with open_store(url, create=False) as store:
        try:
            yield store
        except (AlertNotFoundError, AlertTransitionError, ValueError, sa.exc.SQLAlchemyError) as exc:
            _fail(exc)


# One JSON reading of a cell for every output.
_jsonable = outputs.plain


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _jsonable(v) for k, v in row.items()} for row in df.to_dict("records")]


def _for_table(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    out = df[[c for c in columns if c in df.columns]].copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%d %H:%M").fillna("")
        elif col == "probability":
            out[col] = out[col].map(lambda p: f"{p:.2f}")
    return out


def _emit(df: pd.DataFrame, fmt: str, columns: Sequence[str], empty: str) -> None:
    # Only the declared columns leave, whatever the format: an outcome typed by staff as its length.
    df = outputs.allowed(df, "alerts")
    columns = [c if c in df.columns else f"{c}_chars" for c in columns]
    if fmt == "json":
        click.echo(json.dumps(_records(df), ensure_ascii=False, indent=2))
    elif fmt == "csv":
        click.echo(outputs.to_csv(df, "alerts"), nl=False)
    elif df.empty:
        click.echo(empty)
    else:
        click.echo(_for_table(df, columns).to_string(index=False))


def _done(alert: dict[str, Any], what: str) -> None:
    click.echo(f"alert {alert['alert_id']} ({alert['dispute_id']}): {what}; "
               f"status {alert['status']}, owner {alert['owner']}")


# ---------------------------------------------------------------------------
# the group


@click.group("alerts")
def alerts() -> None:
    """List, inspect and act on alerts (raised -> assigned -> in_progress ->
    resolved | escalated -> follow_up -> closed)."""


@alerts.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice([*STATUSES, "open"]),
              help="Only these statuses (repeatable). Default: open alerts.")
@click.option("--all", "everything", is_flag=True, help="Closed alerts too.")
@click.option("--level", "levels", multiple=True, type=click.Choice(LEVELS),
              help="Only these levels (repeatable).")
@click.option("--district", default=None, metavar="CODE", help="Only this district of a province store.")
@_store_option
@_format_option
def list_alerts(statuses: tuple[str, ...], everything: bool, levels: tuple[str, ...], district: str | None,
                store_url: str, fmt: str) -> None:
    """List alerts, newest first (with their district on a province store: dispute ids repeat
    across districts)."""
    status: Sequence[str] | None = statuses or (None if everything else ["open"])
    with _opened(store_url) as store:
        df = store.alerts(status=status, level=levels or None, district=district)
    province = "district" in df.columns and (df["district"].astype(str) != "").any()
    _emit(df, fmt, ("district", *_TABLE_COLUMNS) if province else _TABLE_COLUMNS, "no alerts")


@alerts.command("show")
@click.argument("alert_id", type=int)
@_store_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
@click.option("--data", "data_dir", envvar="ESCALATION_RISK_DATA", default=None, type=click.Path(file_okay=False),
              help="The district's data (env ESCALATION_RISK_DATA): also list the 3 most similar past cases.")
@click.option("--model", "model_dir", envvar="ESCALATION_RISK_MODEL", default="models/default", show_default=True,
              type=click.Path(file_okay=False), help="Model directory for the similar cases.")
def show(alert_id: int, store_url: str, fmt: str, data_dir: str | None, model_dir: str) -> None:
    """Show one alert with its full audit trail (and, with --data, the 3 most similar past cases)."""
    with _opened(store_url) as store:
        alert = store.alert(alert_id)
    from .cases import alert_cases
    similar = alert_cases(alert, data_dir, model_dir, as_json=fmt == "json")
    # Only the declared columns leave: the outcome and the notes typed by staff as their lengths.
    trail = [outputs.only(e, "alert_events") for e in alert.pop("events")]
    alert = {**outputs.only(alert, "alerts"), "events": trail}
    if fmt == "json":
        out = {k: _jsonable(v) if k != "events" else [
            {ek: _jsonable(ev) for ek, ev in e.items()} for e in v] for k, v in alert.items()}
        if isinstance(similar, list):
            out["similar_cases"] = similar
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    events = pd.DataFrame(alert.pop("events"))
    width = max(len(k) for k in alert)
    for key, value in alert.items():
        if key in ("reasons", "reasons_zh"):
            value = "; ".join(value) if value else ""
        elif isinstance(value, pd.Timestamp):
            value = f"{value:%Y-%m-%d %H:%M}"
        elif value is None:
            value = ""
        click.echo(f"{key:<{width}}  {value}")
    click.echo("\nevents:")
    if events.empty:
        click.echo("(none)")
    else:
        events["at"] = pd.to_datetime(events["at"])
        click.echo(_for_table(events.fillna(""), outputs.output("alert_events").header).to_string(index=False))
    click.echo("\nsimilar past cases:")
    click.echo("\n".join(similar) if isinstance(similar, list) else similar)


@alerts.command("assign")
@click.argument("alert_id", type=int)
@click.option("--to", "to", required=True, help="The new owner, who follows the alert from now on.")
@click.option("--by", "by", required=True, help="Who makes the assignment.")
@click.option("--note", default="", help="Free text for the audit trail.")
@click.option("--at", type=MOMENT, default=None, help="When (a date: the end of that day; default: now).")
@_store_option
def assign(alert_id: int, to: str, by: str, note: str, at: pd.Timestamp | None, store_url: str) -> None:
    """Assign ALERT_ID to a person (who then owns it until it is closed)."""
    with _opened(store_url) as store:
        alert = store.assign(alert_id, to=to, by=by, note=note, at=at)
    _done(alert, f"assigned to {to}")


@alerts.command("update")
@click.argument("alert_id", type=int)
@click.option("--status", required=True, type=click.Choice(STATUSES), help="The new status.")
@click.option("--by", "by", required=True, help="Who makes the change.")
@click.option("--note", default="", help="Free text for the audit trail.")
@click.option("--at", type=MOMENT, default=None, help="When (a date: the end of that day; default: now).")
@_store_option
def update(alert_id: int, status: str, by: str, note: str, at: pd.Timestamp | None, store_url: str) -> None:
    """Move ALERT_ID to another status, if the lifecycle allows it."""
    with _opened(store_url) as store:
        alert = store.update(alert_id, status, by=by, note=note, at=at)
    _done(alert, f"now {status}")


@alerts.command("close")
@click.argument("alert_id", type=int)
@click.option("--by", "by", required=True, help="Who closes it.")
@click.option("--outcome", required=True, help="What happened, in a few words.")
@click.option("--escalated/--not-escalated", "escalated", default=None,
              help="Whether the dispute turned into a crime (omit if not known).")
@click.option("--note", default="", help="Free text for the audit trail.")
@click.option("--at", type=MOMENT, default=None, help="When (a date: the end of that day; default: now).")
@_store_option
def close(alert_id: int, by: str, outcome: str, escalated: bool | None, note: str,
          at: pd.Timestamp | None, store_url: str) -> None:
    """Close ALERT_ID after its follow-up, recording the outcome."""
    with _opened(store_url) as store:
        alert = store.close(alert_id, by=by, outcome=outcome, escalated_to_crime=escalated,
                            note=note, at=at)
    # The confirmation names the outcome by its length, as every output does (see outputs.py).
    _done(alert, f"closed (outcome recorded, {outputs.only(alert, 'alerts')['outcome_chars']} characters)")


@alerts.command("overdue")
@click.option("--now", type=MOMENT, default=None, help="The clock to judge by (default: now).")
@_store_option
@_format_option
def overdue(now: pd.Timestamp | None, store_url: str, fmt: str) -> None:
    """Open alerts past their due time and not yet resolved."""
    with _opened(store_url) as store:
        df = store.overdue(now)
    _emit(df, fmt, (*_TABLE_COLUMNS, "overdue_by"), "no overdue alerts")


@alerts.command("follow-ups")
@click.option("--now", type=MOMENT, default=None, help="The clock to judge by (default: now).")
@click.option("--days", default=7, show_default=True, type=click.IntRange(min=0),
              help="Resolved or escalated more than this many days ago.")
@_store_option
@_format_option
def follow_ups(now: pd.Timestamp | None, days: int, store_url: str, fmt: str) -> None:
    """Resolved or escalated alerts waiting for a follow-up visit."""
    with _opened(store_url) as store:
        df = store.follow_ups_due(now, days=days)
    _emit(df, fmt, (*_TABLE_COLUMNS, "status_at", "waiting"), "no follow-ups due")


@alerts.command("outcomes")
@_store_option
@_format_option
def outcomes(store_url: str, fmt: str) -> None:
    """Closed alerts with their recorded outcomes (labels for the next training)."""
    with _opened(store_url) as store:
        df = store.outcomes()
    _emit(df, fmt, tuple(df.columns), "no closed alerts")


# ---------------------------------------------------------------------------
# delivery to people: webhook messages and the daily review

NOTIFY_URL_ENV = "ESCALATION_RISK_NOTIFY_URL"
NOTIFY_SECRET_ENV = "ESCALATION_RISK_NOTIFY_SECRET"


def notify_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--notify URL`` and the signing secret, shared by the commands that send messages."""
    f = click.option("--notify-shape", type=click.Choice(["json", "wecom", "dingtalk", "feishu"]), default="json",
                     show_default=True, help="Payload shape: our JSON, or an office platform's text message.")(f)
    f = click.option("--notify-timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
                     help="Seconds before one request is given up (it stays pending).")(f)
    f = click.option("--notify-secret", envvar=NOTIFY_SECRET_ENV, default=None, metavar="SECRET",
                     help=f"Secret signing each request, Standard Webhooks (whsec_<base64>, or text of at "
                          f"least 32 bytes); required to send. Prefer the env {NOTIFY_SECRET_ENV}: an "
                          "option shows in the process list.")(f)
    return f


def make_webhook(url: str, secret: str | None, timeout: float, shape: str) -> Any:
    """The Webhook for the CLI options (bad settings: exit 2 with the option named; the
    secret is required, and never shown)."""
    from ..alerts.webhook import MIN_SECRET_BYTES, Webhook, WebhookSecretError, secret_bytes

    if not secret:
        raise click.BadParameter(f"a secret of at least {MIN_SECRET_BYTES} bytes is required to send "
                                 f"(env {NOTIFY_SECRET_ENV})", param_hint="--notify-secret")
    try:
        key = secret_bytes(secret)
    except WebhookSecretError as exc:
        raise click.BadParameter(str(exc), param_hint="--notify-secret") from None
    try:
        return Webhook(url, secret=key, timeout_s=timeout, shape=shape)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--notify") from None


@alerts.command()
@_store_option
@click.option("--notify", "notify_url", envvar=NOTIFY_URL_ENV, required=True, metavar="URL",
              help=f"Webhook to POST to (env {NOTIFY_URL_ENV}).")
@notify_options
@click.option("--reclaim-after", type=click.FloatRange(min=0), default=600.0, show_default=True, metavar="SECONDS",
              help="Send again a message another deliverer claimed this long ago and never marked (it died); "
                   "the resend carries the same webhook-id.")
def deliver(store_url: str, notify_url: str, notify_secret: str | None, notify_timeout: float,
            notify_shape: str, reclaim_after: float) -> None:
    """Send the messages still pending (failed or not yet tried). Exit 4 when some stay pending.

    Safe to run twice at once (cron and a person): each message is claimed before it is sent.
    """
    from ..alerts.notify import Notifier

    hook = make_webhook(notify_url, notify_secret, notify_timeout, notify_shape)
    with _opened(store_url) as store:
        report = Notifier(store, hook, lease_s=reclaim_after).deliver()
    click.echo(str(report))
    if not report.ok:
        raise SystemExit(EXIT_DELIVERY_PENDING)


@alerts.command()
@_store_option
@click.option("--notify", "notify_url", envvar=NOTIFY_URL_ENV, required=True, metavar="URL",
              help=f"Webhook to POST to (env {NOTIFY_URL_ENV}).")
@notify_options
@click.option("--at", "at", type=MOMENT, default=None, help="The moment of the review (default: now).")
def remind(store_url: str, notify_url: str, notify_secret: str | None, notify_timeout: float, notify_shape: str,
           at: pd.Timestamp | None) -> None:
    """The daily review: one message per owner (overdue and due today) and an office summary.

    Idempotent per day: a second run the same day sends only what is still pending.
    Exit 4 when some messages stay pending.
    """
    from ..alerts.notify import Notifier

    hook = make_webhook(notify_url, notify_secret, notify_timeout, notify_shape)
    with _opened(store_url) as store:
        n = Notifier(store, hook)
        queued = n.queue_reminders(at)
        report = n.deliver()
    click.echo(f"{queued} reminder message(s) queued; {report}")
    if not report.ok:
        raise SystemExit(EXIT_DELIVERY_PENDING)
