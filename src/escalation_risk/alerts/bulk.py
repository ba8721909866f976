"""Many rows into one table, fast, inside the caller's transaction.

SQLAlchemy's ``executemany`` builds a parameter dict per row and runs every value through
its type's bind processor: at a million-person night (209,408 score rows) that per-row
work is most of the record step, and the night's constants (its ``as_of``, the model, the
district) go through the ``_Instant`` processor once per row. Here each column's processor
runs once for a constant and per row only where a column varies and its type has one; the
rows then go to the driver in its fastest form: ``COPY`` on PostgreSQL (psycopg),
``executemany`` of plain tuples on SQLite. Both run on the connection's own DBAPI
connection, so they are part of the transaction the caller holds. Any other driver takes
SQLAlchemy's ``executemany``: the values stored are the same on every path.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa


def insert_rows(conn: sa.Connection, table: sa.Table, columns: Sequence[str],
                rows: Sequence[Sequence[Any]], constants: Mapping[str, Any] | None = None, *,
                plain: Collection[str] = (), fast: bool = True) -> None:
    """Insert ``rows`` (tuples of ``columns``' values) into ``table``, each with ``constants``.

    ``plain`` names columns whose values are already what every driver takes (a Python
    float or str, or None), so their type's processor, which would hand them back
    unchanged, is skipped. Columns left out take their Python-side default where it is a
    constant (as SQLAlchemy's insert does), else their server default; a column left out
    whose Python-side default is computed (a callable, a SQL expression, a sequence) is
    refused: pass its values. Nothing is returned: the caller reads back generated keys by
    a query if it needs them.
    ``fast=False`` takes SQLAlchemy's ``executemany`` whatever the driver (as any other
    driver does).
    """
    if not rows:
        return
    constants = {**_defaults(table, {*columns, *(constants or {})}), **(constants or {})}
    names = [*columns, *constants]
    dialect = conn.dialect
    fixed = tuple(_bound(table.c[n], dialect, v) for n, v in constants.items())
    procs = [None if n in plain else _memo(_processor(table.c[n], dialect)) for n in columns]
    if any(p is not None for p in procs):
        steps: list[tuple[int, Callable[[Any], Any]]] = [(i, p) for i, p in enumerate(procs) if p is not None]

        def convert(row: Sequence[Any]) -> tuple[Any, ...]:
            out = list(row)
            for i, p in steps:
                out[i] = p(out[i])
            return (*out, *fixed)
        values = [convert(r) for r in rows]
    else:
        values = [(*r, *fixed) for r in rows] if fixed else [tuple(r) for r in rows]

    raw: Any = None if not fast else conn.connection.dbapi_connection
    into = f"{_quote(dialect, table.name)} ({', '.join(_quote(dialect, n) for n in names)})"
    if dialect.name == "sqlite" and raw is not None:
        statement = f"INSERT INTO {into} VALUES ({', '.join('?' * len(names))})"
        cur = raw.cursor()
        try:
            cur.executemany(statement, values)
        except dialect.loaded_dbapi.Error as exc:
            raise _wrapped(statement, exc, dialect) from exc
        finally:
            cur.close()
    elif dialect.name == "postgresql" and dialect.driver == "psycopg" and raw is not None:
        statement = f"COPY {into} FROM STDIN"
        try:
            with raw.cursor() as cur, cur.copy(statement) as copy:
                for v in values:
                    copy.write_row(v)
        except dialect.loaded_dbapi.Error as exc:
            raise _wrapped(statement, exc, dialect) from exc
    else:
        # The values are bound already: a plain executemany of the processed values.
        stmt = sa.text(f"INSERT INTO {into} VALUES ({', '.join(f':p{i}' for i in range(len(names)))})")
        conn.execute(stmt, [{f"p{i}": x for i, x in enumerate(v)} for v in values])


def insert_dicts(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]],
                 constants: Mapping[str, Any] | None = None) -> None:
    """:func:`insert_rows` of dicts that all have the first one's keys."""
    if rows:
        columns = list(rows[0])
        insert_rows(conn, table, columns, [tuple(r[c] for c in columns) for r in rows], constants)


def _defaults(table: sa.Table, given: Collection[str]) -> dict[str, Any]:
    """The Python-side defaults of ``table``'s columns not in ``given`` (constants only)."""
    out: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if column.name in given or default is None:
            continue
        if not getattr(default, "is_scalar", False):
            raise ValueError(f"insert_rows: column {table.name}.{column.name} is left out and its "
                             f"default is computed ({type(default).__name__}); pass its values")
        out[column.name] = default.arg  # type: ignore[attr-defined]
    return out


def _wrapped(statement: str, exc: Exception, dialect: sa.Dialect) -> sa.exc.StatementError:
    """The driver's error as SQLAlchemy's path raises it (IntegrityError and the like), so
    callers catch the same types on every path. The rows are left out of the message."""
    return sa.exc.DBAPIError.instance(statement, None, exc, dialect.loaded_dbapi.Error,
                                      hide_parameters=True, dialect=dialect)


def _processor(column: sa.Column, dialect: sa.Dialect) -> Callable[[Any], Any] | None:
    """The column type's bind processor for ``dialect`` (its own, then its impl's), if any."""
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def _bound(column: sa.Column, dialect: sa.Dialect, value: Any) -> Any:
    """``value`` as the driver takes it for ``column``."""
    proc = _processor(column, dialect)
    return value if proc is None else proc(value)


def _memo(proc: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """``proc`` converting each distinct value once: a night's rows share a few instants."""
    if proc is None:
        return None
    seen: dict[Any, Any] = {}

    def once(value: Any) -> Any:
        # Keyed on type and fold too: equality ignores ``fold`` (two naive local times of a
        # DST repeated hour are equal, yet are different instants) and 1 == 1.0 == True.
        key = (value.__class__, value, getattr(value, "fold", 0))
        try:
            return seen[key]
        except KeyError:
            out = seen[key] = proc(value)
            return out
        except TypeError:  # unhashable: converted every time
            return proc(value)
    return once


def _quote(dialect: sa.Dialect, name: str) -> str:
    return dialect.identifier_preparer.quote(name)
