"""The tokens table: bearer tokens, stored as SHA-256 hashes only."""

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
