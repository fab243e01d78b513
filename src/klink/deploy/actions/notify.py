"""Notifications, pause points and completion.

Notifications go to the rooms of the app's ``deploymentRooms[env]``; a failed one is logged
and never fails the deployment.
"""

from __future__ import annotations

from typing import Any

from klink.deploy import lifecycle
from klink.deploy.actions.registry import action
from klink.deploy.context import Context
from klink.deploy.model import COMPLETED, Done, Outcome


def rooms(ctx: Context) -> list[str]:
    raw = (ctx.prep.application or {}).get("deploymentRooms") or {}
    value = raw.get(ctx.deployment.env) if isinstance(raw, dict) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _notify(ctx: Context, event: str, text: str) -> Outcome:
    targets = rooms(ctx)
    if not targets:
        return Done()
    d = ctx.deployment
    payload: dict[str, Any] = {
        "event": event,
        "deployment": d.id,
        "app": d.app,
        "env": d.env,
        "image": d.image,
        "commit": d.config_commit,
        "user": d.user,
        "via": d.via,
        "status": d.status,
        "message": d.message,
    }
    problems = ctx.services.notifier.send(targets, text, payload)
    for problem in problems:
        ctx.log(f"notification failed (ignored): {problem}")
    return Done(f"notified {len(targets) - len(problems)}/{len(targets)} rooms")


def _who(ctx: Context) -> str:
    d = ctx.deployment
    return f"{d.app}/{d.env} {d.image} (config {str(d.config_commit)[:10]}) by {d.user}"


@action("notify_start")
def notify_start(ctx: Context) -> Outcome:
    return _notify(ctx, "start", f"Deploying {_who(ctx)}: {ctx.deployment.message}")


@action("notify_undo")
def notify_undo(ctx: Context) -> Outcome:
    return _notify(ctx, "undo", f"Undoing deployment {ctx.deployment.id} of {_who(ctx)}")


@action("notify_complete")
def notify_complete(ctx: Context) -> Outcome:
    verb = "Undo of" if ctx.deployment.undo else "Deployed"
    return _notify(ctx, "complete", f"{verb} {_who(ctx)}: completed")


def notify_failure(ctx: Context, error: str) -> None:
    """Called by the engine when a deployment fails (never raises)."""
    try:
        _notify(ctx, "failed", f"Deployment {ctx.deployment.id} of {_who(ctx)} failed: {error}")
    except Exception as exc:  # a notification never fails a deployment
        ctx.log(f"notification failed (ignored): {exc}")


def notify_waiting(ctx: Context, why: str) -> None:
    """Told once, when a deployment starts waiting for people (its approvals); never raises.
    The event carries the deployment's id, for approve and reject buttons in chat."""
    try:
        _notify(ctx, "waiting", f"Deployment {ctx.deployment.id} of {_who(ctx)} waits: {why}")
    except Exception as exc:  # a notification never fails a deployment
        ctx.log(f"notification failed (ignored): {exc}")


@action("pause_point")
def pause_point(ctx: Context) -> Outcome:
    reason = str(ctx.step.arg("reason", "pause"))
    return Done(f"pausing: {reason}", pause=reason)


@action("show_instructions")
def show_instructions(ctx: Context) -> Outcome:
    message = str(ctx.step.arg("message", ""))
    ctx.log(f"instructions: {message}")
    return Done("pausing for the app's instructions; resume when done", pause="instructions")


@action("complete")
def complete(ctx: Context) -> Outcome:
    if ctx.deployment.status != COMPLETED:  # idempotent
        lifecycle.move(ctx.deployment, "complete")
    return Done("deployment completed" if not ctx.deployment.undo else "undo completed")
