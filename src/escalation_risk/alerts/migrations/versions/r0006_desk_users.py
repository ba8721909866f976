"""Schema 6: the desk's users, their sessions, service tokens and the access log.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

Users (worker: the grids given to them; supervisor: a district; admin) sign in to the
alert desk (``escalation_risk.desk``); services call its JSON API with bearer tokens.
Passwords are stored as Argon2 hashes, tokens and session ids as SHA-256 digests (both
are long random strings, so a fast digest is enough and keeps each request cheap). The
access log keeps sign-ins, refusals (another grid's alert, a missing CSRF token, a bad
token) and sign-outs: who, from which address, when; never a password or a token.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from escalation_risk.alerts.migrations._common import record_version

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    op.create_table(
        "desk_users",
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
    op.create_table(
        "desk_sessions",
        sa.Column("session_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("desk_users.user_id"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_seen_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "desk_tokens",
        sa.Column("token_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "desk_access_log",
        sa.Column("log_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("username", sa.String(64), nullable=False, server_default=""),
        sa.Column("address", sa.String(64), nullable=False, server_default=""),
        sa.Column("detail", sa.String(255), nullable=False, server_default=""),
    )
    op.create_index("ix_desk_access_log_user", "desk_access_log", ["event", "username", "at"])
    op.create_index("ix_desk_access_log_address", "desk_access_log", ["event", "address", "at"])
    record_version(conn, 6)
