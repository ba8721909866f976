"""The alert store's errors, and how a store URL is shown in messages."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


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


class StoreKeyError(NightConflictError):
    """A night whose ids were made with another pseudonym key than the store's nights:
    recording it would split every person's history in two. Nothing is written."""


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



def _url_for_messages(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)

