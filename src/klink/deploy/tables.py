"""The orchestrator's tables.

``deployments`` holds the record (status, plan, cursor, states, facts) plus the engine's
scheduling (``not_before``) and lease (``lease_holder``, ``lease_expires``). ``deploy_slots``
has one row per app+env with a deployment in progress: its primary key is what makes exactly
one of N racing requests win. ``deploy_lock`` holds the global "closed for business" lock.
``deploy_approvals`` holds every decision a person took on a deployment's release rules:
approve, reject, or an admin's override of a window or freeze, with who, when and why.
"""

from __future__ import annotations

import sqlalchemy as sa

from klink.store import METADATA, UtcDateTime

deployments = sa.Table(
    "deployments",
    METADATA,
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
    sa.Column("control", sa.String(160), nullable=True),
    sa.Column("via", sa.String(128), nullable=True),
    sa.Column("hold", sa.Text, nullable=True),  # why it is paused, and by whom
    sa.Column("not_before", UtcDateTime(), nullable=True),
    sa.Column("lease_holder", sa.String(64), nullable=True),
    sa.Column("lease_expires", UtcDateTime(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Index("ix_deployments_app_env", "app", "env", "created_at"),
    sa.Index("ix_deployments_status", "status", "not_before"),
)

deploy_tasks = sa.Table(
    "deploy_tasks",
    METADATA,
    sa.Column("deployment_id", sa.String(32), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=True),
    sa.Column("ended_at", UtcDateTime(), nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("errors", sa.Integer, nullable=False, server_default="0"),
)

deploy_logs = sa.Table(
    "deploy_logs",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("deployment_id", sa.String(32), nullable=False),
    sa.Column("seq", sa.Integer, nullable=True),  # the action's place in the plan, if any
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index("ix_deploy_logs_deployment", "deployment_id", "id"),
)

deploy_slots = sa.Table(
    "deploy_slots",
    METADATA,
    sa.Column("app", sa.String(32), primary_key=True),
    sa.Column("env", sa.String(32), primary_key=True),
    sa.Column("deployment_id", sa.String(32), nullable=False),
    sa.Column("since", UtcDateTime(), nullable=False),
)

deploy_lock = sa.Table(
    "deploy_lock",
    METADATA,
    sa.Column("name", sa.String(16), primary_key=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
)

deploy_approvals = sa.Table(
    "deploy_approvals",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("deployment_id", sa.String(32), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),  # approve, reject, override
    sa.Column("actor", sa.String(200), nullable=False),  # token name [via front door]
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Index("ix_deploy_approvals_deployment", "deployment_id", "id"),
)
