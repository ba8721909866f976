"""``escalation-risk store``: the alert store's schema (Alembic migrations shipped in the package)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click
import sqlalchemy as sa

from .errors import check_store_url, fail

STORE_ENV = "ESCALATION_RISK_STORE"


def _store_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--store", "store_url", envvar=STORE_ENV, required=True, callback=check_store_url,
                        metavar="URL", help=f"The alert store (default ${STORE_ENV}).")(f)


@click.group()
def store() -> None:
    """The alert store's schema: which version it is at, and upgrading it."""


@store.command()
@_store_option
@click.option("--timezone", default=lambda: os.environ.get("ESCALATION_RISK_TIMEZONE"), metavar="ZONE",
              help="Zone of the naive local times a store before schema 3 holds (default Asia/Shanghai).")
def upgrade(store_url: str, timezone: str | None) -> None:
    """Bring the store to this release's schema, in one transaction (back it up first).

    A new (empty) database gets the whole schema; a store made by an earlier release,
    with or without Alembic, is upgraded in place and keeps its alerts and audit trail.
    """
    from ..alerts import SchemaVersionError
    from ..alerts.store import MissingDriverError, upgrade_store
    try:
        before, after = upgrade_store(store_url, timezone=timezone)
    except (SchemaVersionError, MissingDriverError, sa.exc.SQLAlchemyError, OSError) as e:
        fail(e)
    if before.version == after.version and before.revision == after.revision:
        click.echo(f"{after.url}: already at schema version {after.version} (revision {after.revision})")
    else:
        was = "empty" if before.empty else f"schema version {before.version}"
        click.echo(f"{after.url}: {was} -> schema version {after.version} (revision {after.revision})")


@store.command()
@_store_option
def current(store_url: str) -> None:
    """Print the store's schema version and whether it needs `store upgrade`; exit 1 if it does."""
    from ..alerts import SchemaVersionError
    from ..alerts.store import MissingDriverError, schema_state
    try:
        state = schema_state(store_url)
    except (SchemaVersionError, MissingDriverError, FileNotFoundError, sa.exc.SQLAlchemyError, OSError) as e:
        fail(e)
    click.echo(str(state))
    if not (state.up_to_date or state.empty):
        raise SystemExit(1)
