"""Reading deployment history: lists, the last completed one, tasks, logs, statistics."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine, RowMapping

from klink import store
from klink.deploy.model import Deployment, Step
from klink.deploy.tables import deploy_logs, deploy_slots, deploy_tasks, deployments


def to_deployment(row: RowMapping) -> Deployment:
    return Deployment(
        id=row["id"],
        app=row["app"],
        env=row["env"],
        image=row["image"],
        commit=row["commit"],
        user=row["user"],
        message=row["message"],
        kind=row["kind"],
        status=row["status"],
        phase=row["phase"],
        undo=bool(row["undo"]),
        config_commit=row["config_commit"],
        previous_state=row["previous_state"],
        new_state=row["new_state"],
        facts=dict(row["facts"] or {}),
        plan=[Step.from_json(s) for s in row["plan"]],
        cursor=row["cursor"],
        error=row["error"],
        control=row["control"],
        via=row.get("via"),
        hold=row.get("hold"),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )


class History:
    engine: Engine

    def find(
        self,
        *,
        app: str | None = None,
        env: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        kinds: tuple[str, ...] | None = None,
    ) -> list[Deployment]:
        query = sa.select(deployments)
        if kinds:
            query = query.where(deployments.c.kind.in_(kinds))
        if app:
            query = query.where(deployments.c.app == app)
        if env:
            query = query.where(deployments.c.env == env)
        if status:
            query = query.where(deployments.c.status == status)
        if since is not None:
            query = query.where(deployments.c.created_at >= since)
        query = query.order_by(deployments.c.created_at.desc(), deployments.c.id.desc())
        with store.read(self.engine) as conn:
            rows = conn.execute(query.limit(limit)).mappings().all()
        return [to_deployment(r) for r in rows]

    def last_completed(
        self, app: str, env: str, kinds: tuple[str, ...] = ("deploy", "rollback", "redeploy")
    ) -> Deployment | None:
        query = (
            sa.select(deployments)
            .where(
                deployments.c.kind.in_(kinds),
                deployments.c.app == app,
                deployments.c.env == env,
                deployments.c.status == "completed",
                deployments.c.undo.is_(False),
            )
            .order_by(deployments.c.finished_at.desc())
            .limit(1)
        )
        with store.read(self.engine) as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else to_deployment(row)

    def in_progress(self) -> list[Deployment]:
        query = sa.select(deployments).join(
            deploy_slots, deploy_slots.c.deployment_id == deployments.c.id
        )
        with store.read(self.engine) as conn:
            rows = conn.execute(query.order_by(deployments.c.created_at)).mappings().all()
        return [to_deployment(r) for r in rows]

    def tasks(self, deployment_id: str) -> list[dict[str, Any]]:
        with store.read(self.engine) as conn:
            rows = conn.execute(
                sa.select(deploy_tasks)
                .where(deploy_tasks.c.deployment_id == deployment_id)
                .order_by(deploy_tasks.c.seq)
            ).mappings()
            return [
                {
                    "seq": r["seq"],
                    "action": r["action"],
                    "phase": r["phase"],
                    "attempts": r["attempts"],
                    "status": r["status"],
                    "startedAt": r["started_at"].isoformat() if r["started_at"] else None,
                    "endedAt": r["ended_at"].isoformat() if r["ended_at"] else None,
                    "message": r["message"],
                }
                for r in rows
            ]

    def logs(self, deployment_id: str, since: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        with store.read(self.engine) as conn:
            rows = conn.execute(
                sa.select(deploy_logs)
                .where(deploy_logs.c.deployment_id == deployment_id, deploy_logs.c.id > since)
                .order_by(deploy_logs.c.id)
                .limit(limit)
            ).mappings()
            return [
                {"id": r["id"], "seq": r["seq"], "at": r["at"].isoformat(), "message": r["message"]}
                for r in rows
            ]

    def stats(self) -> list[dict[str, Any]]:
        query = sa.select(
            deployments.c.app,
            deployments.c.env,
            deployments.c.user,
            deployments.c.status,
            deployments.c.undo,
            deployments.c.created_at,
            deployments.c.finished_at,
        )
        with store.read(self.engine) as conn:
            return [dict(r) for r in conn.execute(query).mappings()]


def running(engine: Engine, app: str | None = None) -> list[dict[str, Any]]:
    """What runs in each app+env by Klink's history: the newest finished deployment that
    completed (an undo's previous state, a deployment's new state), one query for them all.

    For each app+env (distinct pairs, read from the ``ix_deployments_app_env`` index) the newest
    completed deployment is one index walk backwards (``ORDER BY created_at DESC LIMIT 1``); only
    those rows are read, and only the few fields shown are taken out of their group states, in
    the database. With 5,000 deployments that is ~2 ms where a window over every row is ~15 ms
    (SQLite must follow each record's overflow pages to reach its times). "Newest" is by
    ``created_at``: one app+env runs one deployment at a time and only the newest can be undone,
    so creation order is also the order of outcomes."""
    query = _running_query(engine.dialect.name, app is not None)
    with store.read(engine) as conn:
        rows = conn.execute(query, {"app": app} if app else {}).mappings().all()
    return [_running_row(r) for r in rows]


@functools.lru_cache(maxsize=8)
def _running_query(dialect: str, by_app: bool) -> sa.Select[Any]:
    """Built once per dialect (building and compiling it costs more than running it)."""
    pairs = sa.select(deployments.c.app, deployments.c.env).distinct()
    if by_app:
        pairs = pairs.where(deployments.c.app == sa.bindparam("app"))
    cells = pairs.subquery("cells")
    other = deployments.alias("other")
    newest = (
        sa.select(other.c.id)
        .where(
            other.c.app == cells.c.app,
            other.c.env == cells.c.env,
            other.c.status == "completed",
            # What changes what runs (a resize keeps the group and its version).
            other.c.kind.in_(RUNNING_KINDS),
        )
        .order_by(other.c.created_at.desc(), other.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    latest = sa.select(newest.label("id")).select_from(cells).subquery("latest")
    fields = _state_fields(dialect)
    return (
        sa.select(
            deployments.c.id,
            deployments.c.app,
            deployments.c.env,
            deployments.c.image,
            deployments.c.config_commit,
            deployments.c.user,
            deployments.c.kind,
            deployments.c.undo,
            deployments.c.finished_at,
            fields.label("state"),
        )
        .join(latest, latest.c.id == deployments.c.id)
        .order_by(deployments.c.app, deployments.c.env)
    )


RUNNING_KINDS = ("deploy", "rollback", "redeploy")
_STATE_FIELDS = ("name", "image_id", "version", "config_commit", "desired_capacity")


def _state_fields(dialect: str) -> Any:
    """The shown fields of the state that runs (an undo's previous state, else the new one),
    as one JSON array per row: one parse of each state in the database, not one per field."""
    state = sa.case(
        (deployments.c.undo, deployments.c.previous_state), else_=deployments.c.new_state
    )
    if dialect == "postgresql":
        return sa.func.json_build_array(
            *(sa.cast(state, JSONB)[key].astext for key in _STATE_FIELDS)
        )
    return sa.func.json_extract(state, *(f"$.{key}" for key in _STATE_FIELDS))


def _running_row(row: RowMapping) -> dict[str, Any]:
    undo = bool(row["undo"])
    values = json.loads(row["state"]) if isinstance(row["state"], str) else row["state"]
    state = dict(zip(_STATE_FIELDS, values or [None] * len(_STATE_FIELDS), strict=True))
    desired = state["desired_capacity"]
    return {
        "app": row["app"],
        "env": row["env"],
        "deployment": row["id"],
        "kind": row["kind"],
        "undo": undo,
        "user": row["user"],
        "since": row["finished_at"].isoformat() if row["finished_at"] else None,
        "group": state["name"],
        "image": state["image_id"] or (None if undo else row["image"]),
        "version": state["version"],
        "commit": state["config_commit"] or (None if undo else row["config_commit"]),
        "desired": int(desired) if desired is not None else None,
    }
