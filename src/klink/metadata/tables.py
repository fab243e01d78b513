"""Applications, environments and the history of every metadata change."""

from __future__ import annotations

import sqlalchemy as sa

from klink.store import METADATA, UtcDateTime

applications = sa.Table(
    "applications",
    METADATA,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

environments = sa.Table(
    "environments",
    METADATA,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

history = sa.Table(
    "metadata_history",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),  # application | environment
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("key", sa.String(256), nullable=True),  # None: the record was created/deleted
    sa.Column("old", sa.JSON, nullable=True),
    sa.Column("new", sa.JSON, nullable=True),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Index("ix_metadata_history_kind_name", "kind", "name", "id"),
)
