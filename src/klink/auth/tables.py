"""The auth service's tables: bearer tokens (SHA-256 hashes only) and the audit log."""

from __future__ import annotations

import sqlalchemy as sa

from klink.store import METADATA, UtcDateTime

tokens = sa.Table(
    "tokens",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("envs", sa.JSON, nullable=True),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

# One row per mutating request to any service (see klink.service.audit): who, for whom, what,
# on what, with which outcome, when. Never a request or response body.
audit = sa.Table(
    "audit",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("actor", sa.String(64), nullable=True),
    sa.Column("on_behalf_of", sa.String(128), nullable=True),
    sa.Column("action", sa.String(300), nullable=False),
    sa.Column("target", sa.String(1000), nullable=False),
    sa.Column("outcome", sa.Integer, nullable=False),
    sa.Column("detail", sa.JSON, nullable=True),
    sa.Index("ix_audit_actor", "actor"),
    sa.Index("ix_audit_at", "at"),
)
