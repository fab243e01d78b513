"""notify messages

Revision ID: notify_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "notify_0001"
down_revision = None
branch_labels = ("notify",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_messages",
        sa.Column("deployment", sa.String(64), primary_key=True),
        sa.Column("room", sa.String(200), primary_key=True),
        sa.Column("channel", sa.String(200), nullable=False),
        sa.Column("ts", sa.String(64), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notify_messages")
