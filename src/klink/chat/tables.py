"""The chat service's tables: linked chat users, one-time link codes, Slack events seen."""

from __future__ import annotations

import sqlalchemy as sa

from klink.store import METADATA, UtcDateTime

# A chat user ("slack:T1/U123", "hubot:alice") acts as the identity (a token's name) it linked.
chat_links = sa.Table(
    "chat_links",
    METADATA,
    sa.Column("chat_user", sa.String(200), primary_key=True),
    sa.Column("identity", sa.String(64), nullable=False),
    sa.Column("linked_at", UtcDateTime(), nullable=False),
)

# Codes are shown once to a chat user and stored hashed, like tokens.
chat_codes = sa.Table(
    "chat_codes",
    METADATA,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("chat_user", sa.String(200), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
)

# Slack retries an event it thinks we missed; the event's id is recorded before it runs.
chat_events = sa.Table(
    "chat_events",
    METADATA,
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("seen_at", UtcDateTime(), nullable=False),
)
