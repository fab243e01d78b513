"""The infrastructure service's tables: every apply, the latest drift check per app+env, and
when each environment's drift check last ran."""

from __future__ import annotations

import sqlalchemy as sa

from klink.store import METADATA, UtcDateTime

applies = sa.Table(
    "infra_applies",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app", sa.String(32), nullable=False),
    sa.Column("env", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),  # a token's name, or "scheduler"
    sa.Column("commit", sa.String(64), nullable=True),
    sa.Column("plan_hash", sa.String(64), nullable=False),
    sa.Column("actions", sa.JSON, nullable=False),  # the plan's actions as JSON
    sa.Column("status", sa.String(16), nullable=False),  # running | succeeded | failed
    sa.Column("result", sa.JSON, nullable=True),  # done / failed / not_done lines
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Index("ix_infra_applies_app_env", "app", "env", "id"),
)

drift = sa.Table(
    "infra_drift",
    METADATA,
    sa.Column("app", sa.String(32), primary_key=True),
    sa.Column("env", sa.String(32), primary_key=True),
    sa.Column("checked_at", UtcDateTime(), nullable=False),
    sa.Column("commit", sa.String(64), nullable=True),
    sa.Column("plan_hash", sa.String(64), nullable=True),
    sa.Column("actions", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=True),  # the plan could not be computed
    sa.Column("apply_id", sa.Integer, nullable=True),  # set when it was applied automatically
)

drift_runs = sa.Table(
    "infra_drift_runs",
    METADATA,
    sa.Column("env", sa.String(32), primary_key=True),
    sa.Column("last_run_at", UtcDateTime(), nullable=False),
)

# One apply per app+env at a time: a row here is the lock (a primary key, so exactly one
# inserter wins on SQLite and PostgreSQL alike); a lock older than the stale limit is taken over.
locks = sa.Table(
    "infra_locks",
    METADATA,
    sa.Column("app", sa.String(32), primary_key=True),
    sa.Column("env", sa.String(32), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("since", UtcDateTime(), nullable=False),
)
