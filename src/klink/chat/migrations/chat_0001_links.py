"""chat links, codes and events

Revision ID: chat_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "chat_0001"
down_revision = None
branch_labels = ("chat",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_links",
        sa.Column("chat_user", sa.String(200), primary_key=True),
        sa.Column("identity", sa.String(64), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "chat_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("chat_user", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "chat_events",
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("chat_events")
    op.drop_table("chat_codes")
    op.drop_table("chat_links")
