"""build numbers

Revision ID: build_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "build_0001"
down_revision = None
branch_labels = ("build",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "build_numbers",
        sa.Column("app", sa.String(32), primary_key=True),
        sa.Column("last_number", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("build_numbers")
