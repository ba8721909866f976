"""Exit codes and the errors every subcommand reports the same way: one line, no traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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


#: Database names people write for PostgreSQL, read as the driver the store uses.
_POSTGRES_ALIASES = ("postgres", "postgresql")


def resolve_store_url(value: str) -> str:
    """The store URL as the store will read it: ``postgres://`` (and ``postgresql://``)
    as ``postgresql+psycopg://``; a relative SQLite path (``sqlite:///out/a.db``, three
    slashes) made absolute from the working directory, so it can be shown as it is."""
    url = sa.make_url(value)
    if url.drivername in _POSTGRES_ALIASES:
        url = url.set(drivername="postgresql+psycopg")
    db = url.database
    if url.get_backend_name() == "sqlite" and db and db != ":memory:" and not db.startswith("file:"):
        url = url.set(database=str(Path(db).expanduser().absolute()))
    return url.render_as_string(hide_password=False)


def shown(url: str) -> str:
    """A store URL fit to print: the password hidden."""
    return sa.make_url(url).render_as_string(hide_password=True)


def check_store_url(_ctx: click.Context | None, param: click.Parameter | None, value: str) -> str:
    """A --store value that SQLAlchemy can read and whose database it knows (resolved by
    :func:`resolve_store_url`), else exit 2."""
    try:
        url = sa.make_url(resolve_store_url(value))
    except sa.exc.ArgumentError:
        raise click.BadParameter(f"not a database URL: {value!r} (expected e.g. sqlite:///out/alerts.db or "
                                 "postgresql+psycopg://user@host/db)", param=param) from None
    try:
        url.get_dialect()
    except sa.exc.NoSuchModuleError:
        raise click.BadParameter(f"unknown database {url.drivername!r} in {url.render_as_string()!r} "
                                 "(expected sqlite:///, postgres:// or postgresql+psycopg://)", param=param) from None
    except ModuleNotFoundError:
        pass  # a known database without its driver: reported when the store is opened
    return url.render_as_string(hide_password=False)


def _is_new(url: str) -> bool:
    """True when opening ``url`` will create the store (no file, or an empty database)."""
    u = sa.make_url(url)
    db = u.database
    if u.get_backend_name() == "sqlite":
        return not db or db == ":memory:" or db.startswith("file:") or not Path(db).is_file()
    from ..alerts.store import schema_state
    try:
        return schema_state(url).empty
    except Exception:  # noqa: BLE001 (unreachable or driverless: the store's own opening says why)
        return False


@contextmanager
def open_store(url: str, *, create: bool = True) -> Iterator[Any]:
    """The store at ``url``; a missing file (with ``create=False``), a missing driver or
    an unreadable store is one line on stderr and exit 1."""
    from ..alerts import AlertStore, SchemaVersionError
    from ..alerts.store import MissingDriverError
    url = resolve_store_url(url)
    new = create and _is_new(url) and sa.make_url(url).database not in (None, "", ":memory:")
    try:
        store = AlertStore(url, create=create)
    except (SchemaVersionError, MissingDriverError, FileNotFoundError, sa.exc.SQLAlchemyError, OSError) as exc:
        fail(exc)
    if new:
        click.echo(f"created a new alert store: {shown(url)}", err=True)
    try:
        yield store
    finally:
        store.dispose()
