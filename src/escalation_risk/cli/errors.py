"""Exit codes and the errors every subcommand reports the same way: one line, no traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click
import sqlalchemy as sa

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_ARGUMENTS = 2  # click's own code for usage errors
EXIT_QUARANTINED = 3
EXIT_DELIVERY_PENDING = 4  # the night is recorded; some webhook messages wait for `alerts deliver`


def fail(exc: BaseException | str) -> NoReturn:
    """One line on stderr and exit 1."""
    message = " ".join(str(exc).split())  # one line, whatever a driver said
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_FAILED)


def check_store_url(_ctx: click.Context | None, param: click.Parameter | None, value: str) -> str:
    """A --store value that SQLAlchemy can read and whose database it knows, else exit 2."""
    try:
        url = sa.make_url(value)
    except sa.exc.ArgumentError:
        raise click.BadParameter(f"not a database URL: {value!r} (expected e.g. sqlite:///out/alerts.db or "
                                 "postgresql+psycopg://user@host/db)", param=param) from None
    try:
        url.get_dialect()
    except sa.exc.NoSuchModuleError:
        raise click.BadParameter(f"unknown database {url.drivername!r} in {url.render_as_string()!r} "
                                 "(expected sqlite:/// or postgresql+psycopg://)", param=param) from None
    except ModuleNotFoundError:
        pass  # a known database without its driver: reported when the store is opened
    return value


@contextmanager
def open_store(url: str, *, create: bool = True) -> Iterator[Any]:
    """The store at ``url``; a missing file (with ``create=False``), a missing driver or
    an unreadable store is one line on stderr and exit 1."""
    from ..alerts import AlertStore, SchemaVersionError
    from ..alerts.store import MissingDriverError
    try:
        store = AlertStore(url, create=create)
    except (SchemaVersionError, MissingDriverError, FileNotFoundError, sa.exc.SQLAlchemyError, OSError) as exc:
        fail(exc)
    try:
        yield store
    finally:
        store.dispose()
