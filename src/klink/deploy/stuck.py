"""No zombies: deployments that make no progress are found and reported.

An active deployment (preparing or running) is stuck when, for longer than the limit
(``KLINK_STUCK_SECONDS``):

- ``unclaimed``: it has been due and no engine holds its lease: its holder died and nobody took
  it over ("lease of h expired 5 min ago, no worker took it"), or no worker runs at all;
- ``waiting``: the action at its cursor has not finished since it first ran ("waiting on
  wait_instances_healthy for 12 min: 1/3 instances healthy"), whoever holds it.

``find_stuck`` is one read of the database and serves ``GET /deploy/stuck`` and the
``klink_deployments_stuck`` gauge. ``report_stuck``, run by ``StuckScheduler`` in every process
that runs engines or the deploy service, reports each stuck episode once across all processes:
it writes a ``stuck: …`` line into the deployment's log (with the row locked, ``SKIP LOCKED``,
so two reporters cannot both write it), logs a warning and tells the app's rooms through the
runtime's one notifier. A later episode (the cursor moved, then stopped again) is reported anew.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from klink import store
from klink.deploy.actions.notify import rooms
from klink.deploy.context import Context, Services
from klink.deploy.model import ACTIVE
from klink.deploy.tables import deploy_logs, deploy_tasks, deployments

log = logging.getLogger(__name__)

PREFIX = "stuck: "


@dataclass(frozen=True)
class StuckReport:
    id: str
    app: str
    env: str
    status: str
    seq: int
    action: str
    kind: str  # unclaimed | waiting
    since: datetime  # when this episode began (due, or the action first ran)
    seconds: float
    reason: str
    holder: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "app": self.app,
            "env": self.env,
            "status": self.status,
            "seq": self.seq,
            "action": self.action,
            "kind": self.kind,
            "since": self.since.isoformat(),
            "seconds": round(self.seconds, 1),
            "reason": self.reason,
            "holder": self.holder,
        }


def ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def find_stuck(engine: Engine, now: datetime, limit: float) -> list[StuckReport]:
    """Every active deployment without progress for longer than ``limit`` seconds."""
    task = deploy_tasks.alias("task")
    query = (
        sa.select(
            deployments.c.id,
            deployments.c.app,
            deployments.c.env,
            deployments.c.status,
            deployments.c.cursor,
            deployments.c.plan,
            deployments.c.not_before,
            deployments.c.lease_holder,
            deployments.c.lease_expires,
            task.c.started_at,
            task.c.status.label("task_status"),
            task.c.message,
        )
        .select_from(
            deployments.outerjoin(
                task,
                sa.and_(
                    task.c.deployment_id == deployments.c.id, task.c.seq == deployments.c.cursor
                ),
            )
        )
        .where(deployments.c.status.in_(ACTIVE))
        .order_by(deployments.c.created_at)
    )
    with store.read(engine) as conn:
        rows = conn.execute(query).all()
    found = []
    cut = now - timedelta(seconds=limit)
    for row in rows:
        plan = row.plan or []
        action = str(plan[row.cursor]["name"]) if row.cursor < len(plan) else "?"
        leased = row.lease_expires is not None and row.lease_expires >= now
        due = row.not_before is None or row.not_before <= now
        kind = reason = None
        if not leased and due and (row.not_before or now) <= cut:
            kind, since = "unclaimed", row.not_before or now
            if row.lease_holder and row.lease_expires is not None:
                gone = (now - row.lease_expires).total_seconds()
                reason = f"lease of {row.lease_holder} expired {ago(gone)} ago, no worker took it"
            else:
                reason = f"due for {ago((now - since).total_seconds())}, no worker took it"
            reason = f"{action}: {reason}"
        elif row.started_at is not None and row.started_at <= cut:
            kind, since = "waiting", row.started_at
            verb = "waiting on" if row.task_status == "waiting" else "running"
            reason = f"{verb} {action} for {ago((now - since).total_seconds())}"
            if row.message:
                reason += f": {row.message}"
        if kind is None or reason is None:
            continue
        found.append(
            StuckReport(
                id=str(row.id),
                app=str(row.app),
                env=str(row.env),
                status=str(row.status),
                seq=int(row.cursor),
                action=action,
                kind=kind,
                since=since,
                seconds=(now - since).total_seconds(),
                reason=reason,
                holder=row.lease_holder if leased else None,
            )
        )
    return found


def _claim_report(engine: Engine, report: StuckReport, now: datetime) -> bool:
    """Write this episode's ``stuck:`` log line unless another process did; True if written."""
    with store.write(engine) as conn:
        locked = conn.execute(
            sa.select(deployments.c.id)
            .where(deployments.c.id == report.id)
            .with_for_update(skip_locked=True)
        ).first()
        if locked is None:
            return False  # being written right now (by its engine, or another reporter)
        seen = conn.execute(
            sa.select(deploy_logs.c.id).where(
                deploy_logs.c.deployment_id == report.id,
                deploy_logs.c.message.startswith(PREFIX),
                deploy_logs.c.at >= report.since,
            )
        ).first()
        if seen is not None:
            return False
        conn.execute(
            deploy_logs.insert().values(
                deployment_id=report.id, seq=report.seq, at=now, message=PREFIX + report.reason
            )
        )
    return True


def report_stuck(services: Services, engine: Engine, limit: float) -> list[StuckReport]:
    """Report each new stuck episode once (log line, warning, rooms); the ones reported."""
    from klink.deploy.store import DeploymentStore

    now = services.clock()
    reported = []
    for report in find_stuck(engine, now, limit):
        if not _claim_report(engine, report, now):
            continue
        reported.append(report)
        log.warning(
            "deployment %s of %s/%s stuck: %s", report.id, report.app, report.env, report.reason
        )
        try:
            d = DeploymentStore(engine).get(report.id)
            ctx = Context(d, services, d.plan[min(d.cursor, len(d.plan) - 1)])
            if not ctx.prep.application:  # stuck before preparation read the app's record
                record = services.metadata.application(d.app)
                ctx.update(application=dict(record.get("metadata") or {}))
            targets = rooms(ctx)
            if targets:
                text = f"Deployment {d.id} of {d.app}/{d.env} is stuck: {report.reason}"
                services.notifier.send(targets, text, {"event": "stuck", **report.to_json()})
        except Exception:  # a notification never stops the watch
            log.exception("notifying that %s is stuck", report.id)
    return reported


class StuckScheduler:
    """A daemon thread that runs ``report_stuck`` every ``tick`` seconds until stopped."""

    def __init__(
        self,
        services: Callable[[], Services],
        engine: Engine,
        limit: float,
        tick: float | None = None,
    ) -> None:
        self.services = services
        self.engine = engine
        self.limit = limit
        self.tick = tick if tick is not None else max(1.0, min(60.0, limit / 4))
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="deploy-stuck", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopped.wait(self.tick):
            try:
                report_stuck(self.services(), self.engine, self.limit)
            except Exception:
                log.exception("looking for stuck deployments")

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
