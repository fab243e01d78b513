"""Dry runs: preparation (reads only) run in memory, then the plan it would execute.

The same action functions and plan builder as a real deployment, without persistence, so what
``--dry-run`` shows is what the engine would run.
"""

from __future__ import annotations

from typing import Any

from klink.deploy import plan as planner
from klink.deploy.actions.registry import actions
from klink.deploy.context import Context, Services
from klink.deploy.model import Deployment, Done, Failed, GroupState, RetryAfter
from klink.errors import InvalidInput, KlinkError


def prepare(d: Deployment, services: Services) -> list[str]:
    """Run the preparation of ``d`` in memory; raise InvalidInput at the first failure."""
    registry = actions()
    logs: list[str] = []
    while d.cursor < len(d.plan) and d.plan[d.cursor].phase == "prepare":
        current = d.plan[d.cursor]
        if current.name == "notify_start":
            d.cursor += 1
            continue
        ctx = Context(deployment=d, services=services, step=current)
        try:
            outcome = registry[current.name](ctx)
        except KlinkError as exc:
            outcome = Failed(exc.message)
        logs += ctx.logs
        if isinstance(outcome, Failed):
            raise InvalidInput(f"{current.name}: {outcome.message}", field=current.name)
        if isinstance(outcome, RetryAfter):
            raise InvalidInput(f"{current.name}: {outcome.reason}", field=current.name)
        if isinstance(outcome, Done) and outcome.message:
            logs.append(f"{current.name}: {outcome.message}")
        d.cursor += 1
    return logs


def describe(
    d: Deployment, steps: list[Any], target_exists: bool, logs: list[str]
) -> dict[str, Any]:
    target, retiring = (d.previous, d.new) if d.undo else (d.new, d.previous)
    keep = bool((d.facts.get("params") or {}).get("keepPreviousGroup")) and not d.undo
    return {
        "dryRun": True,
        "app": d.app,
        "env": d.env,
        "image": d.image,
        "commit": d.config_commit or d.commit,
        "groups": planner.describe(target, retiring, target_exists=target_exists, keep=keep),
        "plan": [s.to_json() for s in steps],
        "previousState": d.previous_state,
        "newState": d.new_state,
        "log": logs,
    }


def deployment(d: Deployment, services: Services) -> dict[str, Any]:
    logs = prepare(d, services)
    steps = d.plan[len(planner.PREPARATION) :]
    exists = bool(d.facts.get("kept_group"))
    return describe(d, list(planner.PREPARATION) + steps, exists, logs)


def undo(d: Deployment, services: Services) -> dict[str, Any]:
    restore = GroupState.from_json(d.previous_state)
    steps = list(planner.undo_steps(restore, d.new))
    exists = False
    if restore is not None:
        provider = services.provider_for(d.env, d.facts.get("environment", {}))
        exists = provider.group_exists(restore.name)
    d.undo = True
    return describe(d, steps, exists, [])
