"""deployments, tasks, logs, slots, lock

Revision ID: deploy_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "deploy_0001"
down_revision = None
branch_labels = ("deploy",)
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("app", sa.String(32), nullable=False),
        sa.Column("env", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("image", sa.String(128), nullable=True),
        sa.Column("commit", sa.String(64), nullable=True),
        sa.Column("config_commit", sa.String(64), nullable=True),
        sa.Column("user", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("undo", sa.Boolean, nullable=False),
        sa.Column("previous_state", sa.JSON, nullable=True),
        sa.Column("new_state", sa.JSON, nullable=True),
        sa.Column("facts", sa.JSON, nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("cursor", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("control", sa.String(16), nullable=True),
        sa.Column("not_before", _TS, nullable=True),
        sa.Column("lease_holder", sa.String(64), nullable=True),
        sa.Column("lease_expires", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
    )
    op.create_index("ix_deployments_app_env", "deployments", ["app", "env", "created_at"])
    op.create_index("ix_deployments_status", "deployments", ["status", "not_before"])
    op.create_table(
        "deploy_tasks",
        sa.Column("deployment_id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
    )
    op.create_table(
        "deploy_logs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer, nullable=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_deploy_logs_deployment", "deploy_logs", ["deployment_id", "id"])
    op.create_table(
        "deploy_slots",
        sa.Column("app", sa.String(32), primary_key=True),
        sa.Column("env", sa.String(32), primary_key=True),
        sa.Column("deployment_id", sa.String(32), nullable=False),
        sa.Column("since", _TS, nullable=False),
    )
    op.create_table(
        "deploy_lock",
        sa.Column("name", sa.String(16), primary_key=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", _TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("deploy_lock", "deploy_slots", "deploy_logs", "deploy_tasks", "deployments"):
        op.drop_table(table)
