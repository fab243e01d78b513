"""Human controls as pure changes of a deployment record, applied by ``DeploymentStore.control``.

Each returns ``(log lines, due)``: ``due`` makes the deployment claimable at once. A control on
a deployment an engine is running right now (``leased``) is left as a request (``control``)
that the engine applies when the running action ends.
"""

from __future__ import annotations

from typing import Any

from klink.deploy.engine import cancel, start_undo
from klink.deploy.model import (
    ACTIVE,
    COMPLETED,
    DEPLOY,
    FAILED,
    FINAL,
    PAUSED,
    PREPARE,
    PREPARING,
    RUNNING,
    Deployment,
)
from klink.deploy.store import DeploymentStore
from klink.errors import Conflict

Change = tuple[list[str], bool]


def pause(d: Deployment, leased: bool, who: str) -> Change:
    if d.status == PAUSED:
        return [], False
    if d.status not in ACTIVE:
        raise Conflict(f"deployment {d.id} is {d.status}; only a running one can be paused")
    if leased:
        d.control = "pause"
        return [f"pause requested by {who}: after the running action"], False
    d.status = PAUSED
    return [f"paused by {who}"], False


def resume(d: Deployment, who: str) -> Change:
    if d.status != PAUSED:
        raise Conflict(f"deployment {d.id} is {d.status}; only a paused one can be resumed")
    d.status = PREPARING if d.phase == PREPARE else RUNNING
    d.control = None
    return [f"resumed by {who}"], True


def cancel_request(d: Deployment, leased: bool, who: str) -> Change:
    if d.status not in (*ACTIVE, PAUSED):
        raise Conflict(f"deployment {d.id} is {d.status}; nothing to cancel")
    if leased and d.status in ACTIVE:
        d.control = f"cancel:{who}"
        return [f"cancel requested by {who}: after the running action"], False
    return cancel(d, who), False


def retry(store: DeploymentStore, conn: Any, d: Deployment, who: str) -> Change:
    if d.status != FAILED:
        raise Conflict(f"deployment {d.id} is {d.status}; only a failed one can be retried")
    d.status = RUNNING if d.phase == DEPLOY else PREPARING
    d.error = None
    d.control = None
    store.reset_task(conn, d.id, d.cursor)
    action = d.plan[d.cursor].name if d.cursor < len(d.plan) else "?"
    return [f"retry of {action} requested by {who}"], True


def undo(d: Deployment, who: str) -> Change:
    if d.status not in (FAILED, PAUSED):
        raise Conflict(
            f"deployment {d.id} is {d.status}; only a failed or paused one can be undone"
        )
    if d.phase != DEPLOY:
        raise Conflict(f"deployment {d.id} changed nothing yet; cancel it instead")
    if d.undo:
        raise Conflict(f"deployment {d.id} is already an undo; retry it or unlock")
    return [f"undo requested by {who}", *start_undo(d)], True


def undo_completed(d: Deployment, who: str) -> Change:
    """Undo of the last completed deployment, when nothing is in progress: the same swap; the
    old group is restored if kept, else recreated from the recorded previous state."""
    if d.status != COMPLETED or d.undo:
        raise Conflict(
            f"{d.app}/{d.env} has nothing to undo: its last deployment {d.id} is "
            f"{'an undo' if d.undo else d.status}; `klink rollback` deploys the previous "
            "image and config again"
        )
    if d.previous_state is None:
        raise Conflict(
            f"deployment {d.id} was the first of {d.app}/{d.env}: undoing it would leave no "
            "group serving; deploy another image instead"
        )
    return [f"undo of the completed deployment requested by {who}", *start_undo(d)], True


def unlock(d: Deployment, who: str) -> Change:
    if d.status in FINAL:
        return [f"unlocked by {who}"], False
    if d.status != FAILED:
        d.status = "cancelled"
    return [f"unlocked by {who}: {d.app}/{d.env} is free to deploy"], False
