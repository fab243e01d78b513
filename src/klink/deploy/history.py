"""Reading deployment history: lists, the last completed one, tasks, logs, statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
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
    ) -> list[Deployment]:
        query = sa.select(deployments)
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

    def last_completed(self, app: str, env: str) -> Deployment | None:
        query = (
            sa.select(deployments)
            .where(
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

    Only the columns needed are read; the window picks the newest row per app+env in SQL so that
    5,000 deployments in history cost one scan of narrow rows, not 5,000 records."""
    newest = sa.func.row_number().over(
        partition_by=(deployments.c.app, deployments.c.env),
        order_by=(deployments.c.finished_at.desc(), deployments.c.id.desc()),
    )
    ranked = sa.select(deployments.c.id, newest.label("rank")).where(
        deployments.c.status == "completed", deployments.c.finished_at.is_not(None)
    )
    if app:
        ranked = ranked.where(deployments.c.app == app)
    latest = ranked.subquery()
    query = (
        sa.select(
            deployments.c.id,
            deployments.c.app,
            deployments.c.env,
            deployments.c.image,
            deployments.c.config_commit,
            deployments.c.user,
            deployments.c.kind,
            deployments.c.undo,
            deployments.c.previous_state,
            deployments.c.new_state,
            deployments.c.finished_at,
        )
        .join(latest, latest.c.id == deployments.c.id)
        .where(latest.c.rank == 1)
        .order_by(deployments.c.app, deployments.c.env)
    )
    with store.read(engine) as conn:
        rows = conn.execute(query).mappings().all()
    return [_running_row(r) for r in rows]


def _running_row(row: RowMapping) -> dict[str, Any]:
    state = (row["previous_state"] if row["undo"] else row["new_state"]) or {}
    return {
        "app": row["app"],
        "env": row["env"],
        "deployment": row["id"],
        "kind": row["kind"],
        "undo": bool(row["undo"]),
        "user": row["user"],
        "since": row["finished_at"].isoformat(),
        "group": state.get("name"),
        "image": state.get("image_id") or (None if row["undo"] else row["image"]),
        "version": state.get("version"),
        "commit": state.get("config_commit") or (None if row["undo"] else row["config_commit"]),
        "desired": state.get("desired_capacity"),
    }
