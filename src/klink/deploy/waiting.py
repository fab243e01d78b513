"""``waitingFor``: one line on every deployment that is not moving, saying why.

Computed, never stored, from the status, the task at the cursor (its status and last message)
and the people's decisions, which the read API loads for the deployments it shows
(``annotate``: two queries for a whole list):

- paused: who paused it and why (``paused by ops: checking dashboards``), or the pause point;
- failed: the action that failed and what a person can do;
- waiting for approvals: ``approvals 1 of 2 from deployer on prod``, counted from the decisions
  (so an approval shows at once, before the engine looks again);
- any other wait: that action's own line (``window opens Mon 09:00 Europe/London``, the health
  gate's ``1/2 instances healthy on port 8080 /healthcheck``);
- moving or finished: None.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from klink import store
from klink.deploy import rules
from klink.deploy.approvals import Decision, Decisions, approvers
from klink.deploy.model import ACTIVE, FAILED, FINAL, PAUSED, Deployment
from klink.deploy.tables import deploy_tasks, deployments
from klink.errors import InvalidInput

GATES = ("await_approval", "await_window")


def waiting_for(d: Deployment) -> str | None:
    current = d.plan[d.cursor].name if d.cursor < len(d.plan) else None
    if d.status == PAUSED:
        return d.hold or (f"paused before {current}" if current else "paused")
    if d.status == FAILED:
        return f"failed at {current or 'the end'}: {d.error or '?'}; undo, retry or unlock"
    if d.status not in ACTIVE or current is None:
        return None
    task = d.current_task or {}
    if current == "await_approval" and task.get("status") == "waiting":
        return _approvals(d) or task.get("message")
    if task.get("status") == "waiting":
        message = str(task.get("message") or "waiting")
        return message if current in GATES else f"{message} ({current})"
    return None


def _approvals(d: Deployment) -> str | None:
    try:
        found = rules.of(d.facts.get("environment")).approvals
    except InvalidInput:
        return None
    if found is None:
        return None
    got = approvers(_decisions(d))
    return f"approvals {len(got)} of {found.required} from {found.who(d.env)}"


def _decisions(d: Deployment) -> list[Decision]:
    return [Decision.from_json(x) for x in d.decisions]


def annotate(engine: sa.engine.Engine, found: Sequence[Deployment], *, every: bool = False) -> None:
    """Load what ``waitingFor`` reads for the deployments not finished (or ``every`` one, for
    a single deployment's record, which shows its decisions)."""
    ids = [d.id for d in found if every or d.status not in FINAL]
    if not ids:
        return
    query = (
        sa.select(deploy_tasks.c.deployment_id, deploy_tasks.c.status, deploy_tasks.c.message)
        .join(
            deployments,
            sa.and_(
                deployments.c.id == deploy_tasks.c.deployment_id,
                deployments.c.cursor == deploy_tasks.c.seq,
            ),
        )
        .where(deployments.c.id.in_(ids))
    )
    with store.read(engine) as conn:
        tasks = {row.deployment_id: row for row in conn.execute(query)}
        decisions = Decisions(engine).of(ids, conn)
    for d in found:
        row = tasks.get(d.id)
        if row is not None:
            d.current_task = {"status": row.status, "message": row.message}
        d.decisions = tuple(x.to_json() for x in decisions.get(d.id, []))
