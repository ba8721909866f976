"""Users, sessions, service tokens and the access log of the desk, in the alert store.

The tables are made by the store's migration 0006 (``alerts/migrations``); this module
reads and writes them over the store's engine. Passwords are Argon2 hashes
(``argon2-cffi``); session ids and service tokens are random strings of 256 bits kept
only as SHA-256 digests, so a copy of the database signs nobody in. Nothing here ever
logs or returns a password, a token or a session id after it is handed out.

Roles: ``worker`` (the grids given to them), ``supervisor`` (a district), ``admin``
(everything). Scopes of a service token: ``score`` (``POST /api/v1/score``) and
``alerts`` (``GET /api/v1/alerts``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .. import clock
from ..alerts import AlertStore
from ..masking import mask_identifiers

__all__ = [
    "ROLES", "SCOPES", "metadata", "User", "UserError", "Directory",
    "LOGIN_WINDOW", "MAX_FAILS_PER_USER", "MAX_FAILS_PER_ADDRESS",
]

log = logging.getLogger("escalation_risk.desk.access")

ROLES: tuple[str, ...] = ("worker", "supervisor", "admin")
SCOPES: tuple[str, ...] = ("score", "alerts")
#: Login rate limit: failed attempts counted over this window, per user name and per address.
LOGIN_WINDOW = pd.Timedelta(minutes=15)
MAX_FAILS_PER_USER = 5
MAX_FAILS_PER_ADDRESS = 20
#: A session unused for this long is over (the next request signs in again).
SESSION_IDLE = pd.Timedelta(hours=12)
MIN_PASSWORD = 10
_NAME = re.compile(r"^[A-Za-z0-9_.\-一-鿿]{1,64}$")

# The tables as migration 0006 makes them (alerts/migrations/versions/r0006_desk_users.py).
metadata = sa.MetaData()
users_table = sa.Table(
    "desk_users", metadata,
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("grids", sa.Text, nullable=False, server_default="[]"),  # JSON list of grid ids
    sa.Column("district", sa.String(64), nullable=False, server_default=""),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
sessions_table = sa.Table(
    "desk_sessions", metadata,
    sa.Column("session_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("desk_users.user_id"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_seen_at", sa.DateTime, nullable=False),
    sa.Column("ended_at", sa.DateTime, nullable=True),
)
tokens_table = sa.Table(
    "desk_tokens", metadata,
    sa.Column("token_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.String(128), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
)
access_log_table = sa.Table(
    "desk_access_log", metadata,
    sa.Column("log_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("username", sa.String(64), nullable=False, server_default=""),
    sa.Column("address", sa.String(64), nullable=False, server_default=""),
    sa.Column("detail", sa.String(255), nullable=False, server_default=""),
    sa.Index("ix_desk_access_log_user", "event", "username", "at"),
    sa.Index("ix_desk_access_log_address", "event", "address", "at"),
)


class UserError(ValueError):
    """A refused user or token operation (unknown user, bad role, weak password...)."""


@dataclass(frozen=True)
class User:
    """A desk user as the app sees it (never with the password hash)."""

    user_id: int
    username: str
    role: str
    grids: tuple[str, ...] = ()
    district: str = ""
    disabled: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def can_see(self, grid: str | None, district: str | None) -> bool:
        """Whether an alert of ``grid`` in ``district`` is this user's to see and act on."""
        if self.role == "admin":
            return True
        if self.role == "supervisor":
            return bool(self.district) and district == self.district
        return grid is not None and grid in self.grids


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> Any:
    return clock.now().to_pydatetime()


def _user(row: Any) -> User:
    return User(int(row["user_id"]), row["username"], row["role"], tuple(json.loads(row["grids"] or "[]")),
                row["district"] or "", bool(row["disabled"]))


def _check_name(name: str, what: str = "user name") -> str:
    name = (name or "").strip()
    if not _NAME.match(name):
        raise UserError(f"{what}: expected 1-64 letters, digits, '_', '.', '-' or Chinese characters, "
                        f"got {name[:64]!r}")
    return name


class Directory:
    """The desk's users, sessions, tokens and access log in the alert store ``store``."""

    def __init__(self, store: AlertStore, *, hasher: PasswordHasher | None = None) -> None:
        self.store = store
        self.engine = store.engine
        self.hasher = hasher or PasswordHasher()
        # A hash to verify against when the user does not exist, so timing does not tell.
        self._dummy = self.hasher.hash(secrets.token_hex(16))

    # -- users ------------------------------------------------------------------

    def add_user(self, username: str, role: str, password: str, *, grids: Sequence[str] = (),
                 district: str = "") -> User:
        """Add a user; a worker needs at least one grid, a supervisor a district."""
        username = _check_name(username)
        if role not in ROLES:
            raise UserError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
        grids = tuple(dict.fromkeys(_check_name(g, "grid") for g in grids))
        district = _check_name(district, "district") if district else ""
        if role == "worker" and not grids:
            raise UserError("role worker: give at least one --grid")
        if role == "supervisor" and not district:
            raise UserError("role supervisor: give --district")
        if len(password or "") < MIN_PASSWORD:
            raise UserError(f"password: at least {MIN_PASSWORD} characters")
        now = _now()
        with self.engine.begin() as conn:
            if conn.execute(sa.select(users_table.c.user_id).where(users_table.c.username == username)).first():
                raise UserError(f"user {username!r} exists already")
            conn.execute(sa.insert(users_table).values(
                username=username, role=role, grids=json.dumps(list(grids)), district=district,
                password_hash=self.hasher.hash(password), disabled=False, created_at=now, updated_at=now))
        return self.user(username)

    def user(self, username: str) -> User:
        """The user named ``username``; :class:`UserError` when there is none."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users_table).where(users_table.c.username == username)).mappings().first()
        if row is None:
            raise UserError(f"no user {username!r}")
        return _user(row)

    def users(self) -> list[User]:
        """Every user, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(users_table).order_by(users_table.c.username)).mappings().all()
        return [_user(r) for r in rows]

    def disable(self, username: str) -> User:
        """Disable a user and end their sessions (history and audit trail stay)."""
        self.user(username)
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(sa.update(users_table).where(users_table.c.username == username)
                         .values(disabled=True, updated_at=now))
            uid = sa.select(users_table.c.user_id).where(users_table.c.username == username).scalar_subquery()
            conn.execute(sa.update(sessions_table).where(sessions_table.c.user_id == uid,
                                                         sessions_table.c.ended_at.is_(None)).values(ended_at=now))
        return self.user(username)

    def grant(self, username: str, *, grids: Iterable[str] = (), district: str | None = None,
              role: str | None = None) -> User:
        """Give ``username`` more grids, a district or another role."""
        u = self.user(username)
        if role is not None and role not in ROLES:
            raise UserError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
        new_grids = tuple(dict.fromkeys((*u.grids, *(_check_name(g, "grid") for g in grids))))
        new_district = u.district if district is None else (_check_name(district, "district") if district else "")
        new_role = role or u.role
        if new_role == "worker" and not new_grids:
            raise UserError("role worker: give at least one --grid")
        if new_role == "supervisor" and not new_district:
            raise UserError("role supervisor: give --district")
        with self.engine.begin() as conn:
            conn.execute(sa.update(users_table).where(users_table.c.username == username).values(
                grids=json.dumps(list(new_grids)), district=new_district, role=new_role, updated_at=_now()))
        return self.user(username)

    # -- signing in ---------------------------------------------------------------

    def login_blocked(self, username: str, address: str) -> bool:
        """Too many failed sign-ins lately for this user name or from this address."""
        since = (clock.now() - LOGIN_WINDOW).to_pydatetime()
        t = access_log_table
        with self.engine.connect() as conn:
            by_user = conn.execute(sa.select(sa.func.count()).where(
                t.c.event == "login_failed", t.c.username == username[:64], t.c.at >= since)).scalar_one()
            by_addr = conn.execute(sa.select(sa.func.count()).where(
                t.c.event == "login_failed", t.c.address == address[:64], t.c.at >= since)).scalar_one()
        return by_user >= MAX_FAILS_PER_USER or by_addr >= MAX_FAILS_PER_ADDRESS

    def authenticate(self, username: str, password: str, address: str) -> User | None:
        """The user when the name and password match an enabled user, else None; logged either way."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users_table).where(users_table.c.username == username)).mappings().first()
        ok = False
        try:
            ok = self.hasher.verify(row["password_hash"] if row is not None else self._dummy, password)
        except (VerificationError, InvalidHashError):
            ok = False
        if ok and row is not None and not row["disabled"]:
            if self.hasher.check_needs_rehash(row["password_hash"]):
                with self.engine.begin() as conn:
                    conn.execute(sa.update(users_table).where(users_table.c.user_id == row["user_id"])
                                 .values(password_hash=self.hasher.hash(password)))
            self.record("login_ok", username, address)
            return _user(row)
        self.record("login_failed", username, address, "disabled" if row is not None and ok else "")
        return None

    def start_session(self, user: User) -> tuple[str, str]:
        """A new session for ``user``: (session id for the cookie, CSRF token)."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(sa.insert(sessions_table).values(session_hash=_digest(sid), user_id=user.user_id,
                                                          csrf_token=csrf, created_at=now, last_seen_at=now))
        return sid, csrf

    def session(self, sid: str) -> tuple[User, str] | None:
        """The (user, CSRF token) of a live session, or None (unknown, ended, idle, user disabled)."""
        s, u = sessions_table, users_table
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(s.c.csrf_token, s.c.last_seen_at, s.c.ended_at, u)
                               .join(u, u.c.user_id == s.c.user_id)
                               .where(s.c.session_hash == _digest(sid))).mappings().first()
        if row is None or row["ended_at"] is not None or row["disabled"]:
            return None
        now = clock.now()
        if now - pd.Timestamp(row["last_seen_at"]) > SESSION_IDLE:
            return None
        if now - pd.Timestamp(row["last_seen_at"]) > pd.Timedelta(minutes=5):  # not a write per request
            with self.engine.begin() as conn:
                conn.execute(sa.update(s).where(s.c.session_hash == _digest(sid))
                             .values(last_seen_at=now.to_pydatetime()))
        return _user(row), row["csrf_token"]

    def end_session(self, sid: str) -> None:
        """End a session: its cookie signs nobody in any more."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(sessions_table).where(sessions_table.c.session_hash == _digest(sid),
                                                         sessions_table.c.ended_at.is_(None))
                         .values(ended_at=_now()))

    # -- service tokens -------------------------------------------------------------

    def add_token(self, name: str, scopes: Iterable[str]) -> str:
        """A new bearer token for the service ``name``; returned once, stored as a digest."""
        name = _check_name(name, "token name")
        wanted = [s.strip() for s in scopes if s.strip()]
        bad = [s for s in wanted if s not in SCOPES]
        if bad or not wanted:
            raise UserError(f"scope: expected one or more of {', '.join(SCOPES)}, got {','.join(wanted)!r}")
        token = "er_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(sa.insert(tokens_table).values(name=name, token_hash=_digest(token),
                                                        scopes=",".join(dict.fromkeys(wanted)), created_at=_now()))
        return token

    def revoke_token(self, name: str) -> int:
        """Revoke every live token of the service ``name``; returns how many."""
        with self.engine.begin() as conn:
            res = conn.execute(sa.update(tokens_table).where(tokens_table.c.name == name,
                                                             tokens_table.c.revoked_at.is_(None))
                               .values(revoked_at=_now()))
        if not res.rowcount:
            raise UserError(f"no live token named {name!r}")
        return int(res.rowcount)

    def token(self, token: str) -> tuple[str, frozenset[str]] | None:
        """(service name, scopes) of a live token, or None."""
        digest = _digest(token)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tokens_table).where(tokens_table.c.token_hash == digest)).mappings().first()
        if row is None or row["revoked_at"] is not None or not hmac.compare_digest(row["token_hash"], digest):
            return None
        return row["name"], frozenset(row["scopes"].split(","))

    # -- the access log -----------------------------------------------------------------

    def record(self, event: str, username: str, address: str, detail: str = "") -> None:
        """Append one line to the access log (and the ``escalation_risk.desk.access`` logger).

        The user name is as typed at sign-in, so it is masked like any typed text: a phone
        number typed into the name field never reaches the log."""
        username, detail = mask_identifiers(username[:64]), mask_identifiers(detail[:255])
        with self.engine.begin() as conn:
            conn.execute(sa.insert(access_log_table).values(at=_now(), event=event, username=username[:64],
                                                            address=address[:64], detail=detail[:255]))
        level = logging.INFO if event in ("login_ok", "logout") else logging.WARNING
        log.log(level, "%s user=%s address=%s %s", event, username[:64], address[:64], detail[:255])

    def access_log(self) -> pd.DataFrame:
        """The access log, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(access_log_table).order_by(access_log_table.c.log_id)).mappings().all()
        return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in access_log_table.columns])
