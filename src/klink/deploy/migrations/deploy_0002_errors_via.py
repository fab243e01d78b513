"""task error counts apart from attempts; who a deployment was requested through; wider controls

Revision ID: deploy_0002
Revises: deploy_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "deploy_0002"
down_revision = "deploy_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "deploy_tasks", sa.Column("errors", sa.Integer, nullable=False, server_default="0")
    )
    op.add_column("deployments", sa.Column("via", sa.String(128), nullable=True))
    if op.get_bind().dialect.name != "sqlite":  # SQLite does not enforce VARCHAR lengths
        op.alter_column("deployments", "control", type_=sa.String(160), existing_type=sa.String(16))


def downgrade() -> None:
    op.drop_column("deployments", "via")
    op.drop_column("deploy_tasks", "errors")
