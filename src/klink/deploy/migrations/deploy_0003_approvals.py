"""approvals, rejections and window overrides; why a paused deployment is held

Revision ID: deploy_0003
Revises: deploy_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "deploy_0003"
down_revision = "deploy_0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "deploy_approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_deploy_approvals_deployment", "deploy_approvals", ["deployment_id", "id"])
    op.add_column("deployments", sa.Column("hold", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("deployments", "hold")
    op.drop_table("deploy_approvals")
