"""Apply history, drift reports and per-app+env apply locks in the database."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from klink import store
from klink.errors import Conflict
from klink.infra.apply import ApplyResult
from klink.infra.plan import Plan
from klink.infra.tables import applies, drift, drift_runs, locks

STALE_LOCK = timedelta(hours=1)  # far beyond any apply; a holder that died frees it by then


def acquire(engine: Engine, app: str, env: str, holder: str, now: datetime) -> None:
    """Take app+env's apply lock, or raise Conflict naming who holds it."""
    try:
        with store.write(engine) as conn:
            row = conn.execute(
                sa.select(locks).where(locks.c.app == app, locks.c.env == env)
            ).first()
            if row is None:
                conn.execute(locks.insert().values(app=app, env=env, holder=holder, since=now))
                return
            if row.since > now - STALE_LOCK:
                raise Conflict(
                    f"infrastructure of {app} in {env} is being applied by {row.holder} "
                    f"(since {row.since.isoformat()})"
                )
            conn.execute(
                locks.update()
                .where(locks.c.app == app, locks.c.env == env, locks.c.since == row.since)
                .values(holder=holder, since=now)
            )
    except sa.exc.IntegrityError:
        raise Conflict(f"infrastructure of {app} in {env} is being applied") from None


def release(engine: Engine, app: str, env: str, holder: str) -> None:
    with store.write(engine) as conn:
        conn.execute(
            locks.delete().where(locks.c.app == app, locks.c.env == env, locks.c.holder == holder)
        )


def start_apply(
    engine: Engine, plan: Plan, *, actor: str, commit: str | None, now: datetime
) -> int:
    with store.write(engine) as conn:
        result = conn.execute(
            applies.insert().values(
                app=plan.app,
                env=plan.env,
                actor=actor,
                commit=commit,
                plan_hash=plan.plan_hash,
                actions=[a.to_json() for a in plan.actions],
                status="running",
                started_at=now,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def finish_apply(engine: Engine, apply_id: int, result: ApplyResult, now: datetime) -> None:
    with store.write(engine) as conn:
        conn.execute(
            applies.update()
            .where(applies.c.id == apply_id)
            .values(status=result.status, result=result.to_json(), finished_at=now)
        )


def _apply_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "app": row.app,
        "env": row.env,
        "actor": row.actor,
        "commit": row.commit,
        "plan_hash": row.plan_hash,
        "actions": row.actions,
        "status": row.status,
        "result": row.result,
        "started_at": row.started_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
    }


def history(engine: Engine, app: str, env: str, limit: int = 50) -> list[dict[str, Any]]:
    """Applies of app+env, newest first."""
    with store.read(engine) as conn:
        rows = conn.execute(
            sa.select(applies)
            .where(applies.c.app == app, applies.c.env == env)
            .order_by(applies.c.id.desc())
            .limit(limit)
        ).all()
    return [_apply_json(r) for r in rows]


def record_drift(
    engine: Engine,
    app: str,
    env: str,
    *,
    now: datetime,
    commit: str | None,
    plan: Plan | None,
    error: str | None = None,
    apply_id: int | None = None,
) -> None:
    values = {
        "checked_at": now,
        "commit": commit,
        "plan_hash": plan.plan_hash if plan else None,
        "actions": [a.to_json() for a in plan.actions] if plan else [],
        "error": error,
        "apply_id": apply_id,
    }
    with store.write(engine) as conn:
        updated = conn.execute(
            drift.update().where(drift.c.app == app, drift.c.env == env).values(**values)
        )
        if updated.rowcount == 0:
            conn.execute(drift.insert().values(app=app, env=env, **values))


def drift_reports(engine: Engine, env: str | None = None) -> list[dict[str, Any]]:
    """The latest check of every app+env (of ``env``), drifted or failed ones first."""
    query = sa.select(drift).order_by(drift.c.env, drift.c.app)
    if env is not None:
        query = query.where(drift.c.env == env)
    with store.read(engine) as conn:
        rows = conn.execute(query).all()
    reports = [
        {
            "app": r.app,
            "env": r.env,
            "checked_at": r.checked_at.isoformat(),
            "commit": r.commit,
            "plan_hash": r.plan_hash,
            "drifted": bool(r.actions),
            "actions": r.actions,
            "error": r.error,
            "applied": r.apply_id,
        }
        for r in rows
    ]
    return sorted(reports, key=lambda r: (not (r["drifted"] or r["error"]), r["env"], r["app"]))


def last_run(engine: Engine, env: str) -> datetime | None:
    with store.read(engine) as conn:
        row = conn.execute(sa.select(drift_runs).where(drift_runs.c.env == env)).first()
    return row.last_run_at if row else None


def mark_run(engine: Engine, env: str, now: datetime) -> None:
    with store.write(engine) as conn:
        updated = conn.execute(
            drift_runs.update().where(drift_runs.c.env == env).values(last_run_at=now)
        )
        if updated.rowcount == 0:
            conn.execute(drift_runs.insert().values(env=env, last_run_at=now))
