"""``escalation-risk users`` and ``escalation-risk tokens``: who may use the desk and the API."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from .alerts import DEFAULT_STORE, STORE_ENV
from .errors import check_store_url, fail, open_store

if TYPE_CHECKING:
    from ..desk.users import Directory, User

_ROLES = ("worker", "supervisor", "admin")


def _store_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--store", "store_url", envvar=STORE_ENV, default=DEFAULT_STORE, show_default=True,
                        metavar="URL", callback=check_store_url,
                        help=f"Alert store, a SQLAlchemy URL (env {STORE_ENV}).")(f)


@contextmanager
def _directory(url: str) -> Iterator[Directory]:
    from ..desk.users import Directory, UserError

    with open_store(url) as store:
        try:
            yield Directory(store)
        except UserError as e:
            fail(e)


def _describe(u: User) -> str:
    where = f" grids {','.join(u.grids)}" if u.grids else ""
    where += f" district {u.district}" if u.district else ""
    return f"{u.username}: {u.role}{where}{' (disabled)' if u.disabled else ''}"


@click.group("users")
def users() -> None:
    """Desk users: workers (their grids), supervisors (a district), admins."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(_ROLES), required=True)
@click.option("--grid", "grids", multiple=True, help="A grid the worker handles (repeat for several).")
@click.option("--district", default="", help="The supervisor's district.")
@click.option("--password-stdin", is_flag=True, required=True,
              help="Read the password from the first line of standard input (never from the command line).")
@_store_option
def add(name: str, role: str, grids: tuple[str, ...], district: str, password_stdin: bool, store_url: str) -> None:
    """Add user NAME with a password read from standard input."""
    password = sys.stdin.readline().rstrip("\r\n")
    with _directory(store_url) as d:
        u = d.add_user(name, role, password, grids=grids, district=district)
    click.echo(f"added {_describe(u)}")


@users.command("disable")
@click.argument("name")
@_store_option
def disable(name: str, store_url: str) -> None:
    """Disable user NAME and end their sessions (their actions stay in the audit trail)."""
    with _directory(store_url) as d:
        u = d.disable(name)
    click.echo(f"disabled {_describe(u)}")


@users.command("grant")
@click.argument("name")
@click.option("--grid", "grids", multiple=True, help="Another grid for the worker (repeat for several).")
@click.option("--district", default=None, help="The supervisor's district.")
@click.option("--role", type=click.Choice(_ROLES), default=None, help="A new role.")
@_store_option
def grant(name: str, grids: tuple[str, ...], district: str | None, role: str | None, store_url: str) -> None:
    """Give user NAME more grids, a district or another role."""
    with _directory(store_url) as d:
        u = d.grant(name, grids=grids, district=district, role=role)
    click.echo(f"granted {_describe(u)}")


@users.command("list")
@_store_option
def list_users(store_url: str) -> None:
    """Every user with role, grids or district."""
    with _directory(store_url) as d:
        for u in d.users():
            click.echo(_describe(u))


@click.group("tokens")
def tokens() -> None:
    """Bearer tokens for services calling the JSON API."""


@tokens.command("add")
@click.argument("name")
@click.option("--scope", "scope", required=True, metavar="score[,alerts]",
              help="What the token may do: score (POST /api/v1/score), alerts (GET /api/v1/alerts).")
@_store_option
def add_token(name: str, scope: str, store_url: str) -> None:
    """A new token for service NAME, printed once on the last line (only its digest is stored)."""
    with _directory(store_url) as d:
        token = d.add_token(name, scope.split(","))
    click.echo(f"token for {name} (scope {scope}); shown once, store it now:")
    click.echo(token)


@tokens.command("revoke")
@click.argument("name")
@_store_option
def revoke_token(name: str, store_url: str) -> None:
    """Revoke every live token of service NAME."""
    with _directory(store_url) as d:
        n = d.revoke_token(name)
    click.echo(f"revoked {n} token(s) of {name}")
