"""People's controls as changes of a deployment record, each a transition of ``lifecycle``.

Each returns ``(log lines, due)``: ``due`` makes the deployment claimable at once. A deferrable
control (pause, cancel, undo) on a deployment an engine is running right now (``leased``) is
recorded as a request (``d.control``) that the holder applies at the action boundary through
``apply_requested``; nothing else writes the status of a leased deployment.
"""

from __future__ import annotations

from collections.abc import Callable

from klink.config.params import DeploymentParams
from klink.deploy import lifecycle
from klink.deploy.context import stored_params
from klink.deploy.lifecycle import Request
from klink.deploy.model import ACTIVE, COMPLETED, DEPLOY, PAUSED, PREPARE, Deployment
from klink.deploy.strategies import strategy_of
from klink.errors import Conflict

Change = tuple[list[str], bool]
REQUEST_WHO = 140  # what of a person's reason fits a recorded request (``control``, 160)


def params_of(d: Deployment) -> DeploymentParams:
    return stored_params(d.facts.get("params"))


def start_undo(d: Deployment) -> list[str]:
    """Turn ``d`` into its undo: the strategy's undo steps, the states swapped."""
    if d.undo:
        raise Conflict(f"deployment {d.id} is already an undo; retry it or unlock", field="id")
    if d.phase != DEPLOY:
        raise Conflict(f"deployment {d.id} changed nothing yet; cancel it instead", field="id")
    lifecycle.move(d, "undo")
    restore, remove = d.previous, d.new
    steps = strategy_of(params_of(d).strategy).undo_steps(restore, remove)
    d.undo = True
    d.cursor = len(d.plan)
    d.plan.extend(steps)
    d.error = None
    d.control = None
    d.finished_at = None
    what = f"restoring {restore.name}" if restore else "no previous group to restore"
    gone = f", removing {remove.name}" if remove else ""
    return [f"undo: {what}{gone} ({len(steps)} actions)"]


def cancel(d: Deployment, who: str) -> list[str]:
    """A preparation ends ``cancelled`` (nothing was touched); a deployment ``failed`` (it may
    have changed the cloud, so it keeps its slot for undo, retry or unlock)."""
    lifecycle.move(d, "cancel")
    if d.status == "cancelled":
        return [f"cancelled by {who}"]
    d.error = f"cancelled by {who}"
    return [f"cancelled by {who}: undo, retry or unlock"]


def pause(d: Deployment, leased: bool, who: str) -> Change:
    """``who`` is the actor, with the reason when one was given (``ops: checking dashboards``)."""
    if d.status == PAUSED:
        return [], False
    if leased and d.status in ACTIVE:
        d.control = Request("pause", who[:REQUEST_WHO]).encode()
        return [f"pause requested by {who}: after the running action"], False
    lifecycle.move(d, "pause", hold=f"paused by {who}")
    return [f"paused by {who}"], False


def reject(d: Deployment, leased: bool, who: str) -> Change:
    """A rejection ends a deployment that has changed nothing ``cancelled``, with the reason;
    while an engine runs one of its actions, that engine applies it when the action ends."""
    if d.phase != PREPARE or lifecycle.target(d.status, "reject", d.phase) is None:
        raise Conflict(
            f"deployment {d.id} is {d.status} in its {d.phase} phase: only a deployment "
            "waiting for its approvals can be rejected (cancel or undo it instead)",
            field="id",
        )
    if leased and d.status in ACTIVE:
        d.control = Request("reject", who[:REQUEST_WHO]).encode()
        return [f"rejection by {who}: applied after the running action"], False
    return end_rejected(d, who), False


def end_rejected(d: Deployment, who: str) -> list[str]:
    lifecycle.move(d, "reject")
    d.error = f"rejected by {who}"
    return [f"rejected by {who}: cancelled"]


def resume(d: Deployment, who: str) -> Change:
    lifecycle.move(d, "resume")
    d.control = None
    return [f"resumed by {who}"], True


def cancel_request(d: Deployment, leased: bool, who: str) -> Change:
    if leased and d.status in ACTIVE:
        lifecycle.target(d.status, "cancel", d.phase)  # allowed from every active status
        d.control = Request("cancel", who).encode()
        return [f"cancel requested by {who}: after the running action"], False
    return cancel(d, who), False


def retry(d: Deployment, who: str, reset_task: Callable[[int], None]) -> Change:
    lifecycle.move(d, "retry")
    d.error = None
    d.control = None
    reset_task(d.cursor)
    action = d.plan[d.cursor].name if d.cursor < len(d.plan) else "?"
    return [f"retry of {action} requested by {who}"], True


def undo(d: Deployment, leased: bool, who: str) -> Change:
    if d.status == COMPLETED:
        return undo_completed(d, who)
    if lifecycle.target(d.status, "undo", d.phase) is None or d.undo:
        if d.phase == PREPARE and d.status in (*ACTIVE, PAUSED):
            raise Conflict(f"deployment {d.id} changed nothing yet; cancel it instead", field="id")
        if d.undo:
            raise Conflict(f"deployment {d.id} is already an undo; retry it or unlock", field="id")
        lifecycle.move(d, "undo")  # raises, naming what is allowed
    if leased and d.status in ACTIVE:
        d.control = Request("undo", who).encode()
        return [f"undo requested by {who}: after the running action"], False
    return [f"undo requested by {who}", *start_undo(d)], True


def undo_completed(d: Deployment, who: str) -> Change:
    """Undo of the last completed deployment, when nothing is in progress: the same swap; the
    old group is restored if kept, else recreated from the recorded previous state."""
    if d.status != COMPLETED or d.undo:
        raise Conflict(
            f"{d.app}/{d.env} has nothing to undo: its last deployment {d.id} is "
            f"{'an undo' if d.undo else d.status}; `klink rollback` deploys the previous "
            "image and config again",
            field="app",
        )
    if d.previous_state is None:
        raise Conflict(
            f"deployment {d.id} was the first of {d.app}/{d.env}: undoing it would leave no "
            "group serving; deploy another image instead",
            field="app",
        )
    return [f"undo of the completed deployment requested by {who}", *start_undo(d)], True


def unlock(d: Deployment, who: str) -> Change:
    if d.status in ("invalid", "completed", "cancelled"):
        return [f"unlocked by {who}"], False
    refusal = lifecycle.unlock_refusal(d)
    if refusal is not None:
        raise refusal
    lifecycle.move(d, "unlock")
    d.error = d.error or f"unlocked by {who}"
    return [f"unlocked by {who}: {d.app}/{d.env} is free to deploy"], False


def apply_requested(d: Deployment, raw: str) -> list[str]:
    """The holder of the lease applies a control recorded while it ran an action."""
    request = Request.decode(raw)
    d.control = None
    if d.status not in ACTIVE:
        return []
    if request.name == "pause":
        lifecycle.move(d, "pause", hold=f"paused by {request.who}")
        return [f"paused by {request.who}"]
    if request.name == "reject":
        if d.phase == PREPARE:
            return end_rejected(d, request.who)
        return [f"rejection by {request.who} came too late: the deployment phase had begun"]
    if request.name == "cancel":
        return cancel(d, request.who)
    if request.name == "undo" and d.phase == DEPLOY and not d.undo:
        return [f"undo by {request.who}", *start_undo(d)]
    return []
