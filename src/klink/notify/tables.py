"""Where each deployment's Slack message is, per room, so that later events update it."""

from __future__ import annotations

import sqlalchemy as sa

from klink.store import METADATA, UtcDateTime

notify_messages = sa.Table(
    "notify_messages",
    METADATA,
    sa.Column("deployment", sa.String(64), primary_key=True),
    sa.Column("room", sa.String(200), primary_key=True),
    sa.Column("channel", sa.String(200), nullable=False),
    sa.Column("ts", sa.String(64), nullable=False),
    sa.Column("posted_at", UtcDateTime(), nullable=False),
)
