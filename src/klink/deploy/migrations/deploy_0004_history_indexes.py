"""indexes for the history: newest first, and by person

Revision ID: deploy_0004
Revises: deploy_0003
"""

from __future__ import annotations

from alembic import op

revision = "deploy_0004"
down_revision = "deploy_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deployments_created", "deployments", ["created_at"])
    op.create_index("ix_deployments_user", "deployments", ["user", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_deployments_user", "deployments")
    op.drop_index("ix_deployments_created", "deployments")
