"""applications, environments, history

Revision ID: metadata_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "metadata_0001"
down_revision = None
branch_labels = ("metadata",)
depends_on = None


def upgrade() -> None:
    for table in ("applications", "environments"):
        op.create_table(
            table,
            sa.Column("name", sa.String(32), primary_key=True),
            sa.Column("metadata", sa.JSON, nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        )
    op.create_table(
        "metadata_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("key", sa.String(256), nullable=True),
        sa.Column("old", sa.JSON, nullable=True),
        sa.Column("new", sa.JSON, nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_metadata_history_kind_name", "metadata_history", ["kind", "name", "id"])


def downgrade() -> None:
    op.drop_table("metadata_history")
    op.drop_table("environments")
    op.drop_table("applications")
