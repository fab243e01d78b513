"""infra_applies, infra_drift, infra_drift_runs, infra_locks

Revision ID: infra_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "infra_0001"
down_revision = None
branch_labels = ("infra",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "infra_applies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app", sa.String(32), nullable=False),
        sa.Column("env", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("commit", sa.String(64), nullable=True),
        sa.Column("plan_hash", sa.String(64), nullable=False),
        sa.Column("actions", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_infra_applies_app_env", "infra_applies", ["app", "env", "id"])
    op.create_table(
        "infra_drift",
        sa.Column("app", sa.String(32), primary_key=True),
        sa.Column("env", sa.String(32), primary_key=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("commit", sa.String(64), nullable=True),
        sa.Column("plan_hash", sa.String(64), nullable=True),
        sa.Column("actions", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("apply_id", sa.Integer, nullable=True),
    )
    op.create_table(
        "infra_drift_runs",
        sa.Column("env", sa.String(32), primary_key=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "infra_locks",
        sa.Column("app", sa.String(32), primary_key=True),
        sa.Column("env", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("infra_locks")
    op.drop_table("infra_drift_runs")
    op.drop_table("infra_drift")
    op.drop_index("ix_infra_applies_app_env", "infra_applies")
    op.drop_table("infra_applies")
