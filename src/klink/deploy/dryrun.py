"""The dry run: a deployment run in memory by the display-only executor.

The same plan, the same executor code and the same actions as the engine: the actions that only
read (the preparation) run for real, and every step after them is shown, not run. Nothing is
persisted, no message is sent, and the cloud is only read.
"""

from __future__ import annotations

import time
from typing import Any

from klink.deploy import controls
from klink.deploy import plan as planner
from klink.deploy.context import Services
from klink.deploy.executor import DisplayOnlyExecutor, RetryPolicy
from klink.deploy.model import ACTIVE, Deployment, Failed, GroupState, RetryAfter
from klink.errors import InvalidInput

# Transient errors in a dry run are retried at once a few times: a person is waiting.
DRY_RETRY = RetryPolicy(budget=3, base=0.05, cap=0.2)


def run(d: Deployment, services: Services) -> tuple[list[dict[str, Any]], list[str]]:
    """Run ``d``'s plan display-only; (every step with whether it ran, the log)."""
    executor = DisplayOnlyExecutor(services, DRY_RETRY)
    shown: list[dict[str, Any]] = []
    logs: list[str] = []
    started = services.clock()
    while d.status in ACTIVE and d.cursor < len(d.plan):
        current = d.plan[d.cursor]
        errors = 0
        while True:
            result = executor.run(d, current, errors=errors, started_at=started)
            if isinstance(result.outcome, RetryAfter) and result.errors > errors:
                errors = result.errors
                time.sleep(result.outcome.seconds)
                continue
            break
        logs += result.logs
        outcome = result.outcome
        if isinstance(outcome, Failed):
            raise InvalidInput(f"{current.name}: {outcome.message}", field=current.name)
        if isinstance(outcome, RetryAfter):
            raise InvalidInput(f"{current.name}: {outcome.reason}", field=current.name)
        if outcome.message:
            logs.append(f"{current.name}: {outcome.message}")
        shown.append({**current.to_json(), "runs": "now" if result.ran else "when deployed"})
        d.cursor += 1
    return shown, logs


def describe(
    d: Deployment, steps: list[dict[str, Any]], exists: bool, logs: list[str]
) -> dict[str, Any]:
    target, retiring = (d.previous, d.new) if d.undo else (d.new, d.previous)
    keep = controls.params_of(d).keep_previous_group and not d.undo
    return {
        "dryRun": True,
        "app": d.app,
        "env": d.env,
        "image": d.image,
        "commit": d.config_commit or d.commit,
        "groups": {
            **planner.describe(target, retiring, target_exists=exists, keep=keep),
            # A canary's baseline: created beside the canary, removed after the judgements.
            "baseline": (d.facts.get("baseline") or {}).get("name"),
        },
        "plan": steps,
        "planHash": _hash(d),
        "previousState": d.previous_state,
        "newState": d.new_state,
        "log": logs,
    }


def _hash(d: Deployment) -> str:
    from klink.deploy.model import plan_hash

    return plan_hash(d.plan)


def deployment(d: Deployment, services: Services) -> dict[str, Any]:
    steps, logs = run(d, services)
    return describe(d, steps, bool(d.facts.get("kept_group")), logs)


def undo(d: Deployment, services: Services) -> dict[str, Any]:
    """``d`` already turned into its undo (``controls.start_undo``) in memory."""
    restore = GroupState.from_json(d.previous_state)
    exists = False
    if restore is not None:
        provider = services.provider_for(d.env, d.facts.get("environment") or {})
        exists = provider.group_exists(restore.name)
    first = d.cursor
    steps, logs = run(d, services)
    d.cursor = first
    return describe(d, steps, exists, logs)
