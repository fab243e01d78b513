"""Apply a plan: its actions in order, stopping at the first failure.

The plan is already ordered (security groups → target groups → load balancers → listeners →
IAM, then deletes in reverse). Security groups are special in one way: a rule may name another
group the same plan creates, so every group the plan creates is first created bare, then each
group's rules are set. Every step is idempotent and reads the live resource it changes, so a
run that stopped halfway is continued by the next plan, computed from live state again.
The result says what was done, what failed (with the provider's message) and what was not done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from klink.errors import KlinkError
from klink.infra.live import Cloud, target_group_spec
from klink.infra.plan import CREATE, DELETE, Action, Plan
from klink.infra.resources import (
    LISTENER,
    LOAD_BALANCER,
    ROLE,
    SECURITY_GROUP,
    TARGET_GROUP,
    TargetGroupDef,
)
from klink.providers.infra import ListenerSpec, LoadBalancerSpec, RoleSpec, SecurityGroupSpec

if TYPE_CHECKING:
    from klink.providers.aws.infra import AwsInfra

log = logging.getLogger(__name__)

SUCCEEDED, FAILED = "succeeded", "failed"


@dataclass(frozen=True)
class ApplyResult:
    status: str
    done: tuple[Action, ...] = ()
    failed: Action | None = None
    error: str | None = None
    not_done: tuple[Action, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "done": [a.line for a in self.done],
            "failed": None
            if self.failed is None
            else {"line": self.failed.line, "error": self.error},
            "not_done": [a.line for a in self.not_done],
        }


def _need_aws(cloud: Cloud, action: Action) -> AwsInfra:
    if cloud.aws is None:
        raise KlinkError(f"{action.line}: not applicable on provider {cloud.provider.name}")
    return cloud.aws


def run_action(action: Action, cloud: Cloud) -> None:
    """Carry out one action against the cloud (idempotent)."""
    kind, desired, live = action.kind, action.desired, action.live
    if kind == TARGET_GROUP:
        if action.op == DELETE:
            cloud.provider.delete_target_group(action.name)
        else:
            assert isinstance(desired, TargetGroupDef)
            cloud.provider.ensure_target_group(target_group_spec(desired))
        return
    aws = _need_aws(cloud, action)
    if kind == SECURITY_GROUP:
        if action.op == DELETE:
            aws.delete_security_group(action.name)
        else:
            assert isinstance(desired, SecurityGroupSpec)
            if action.op == CREATE and action.name not in aws.group_ids():
                aws.create_security_group(desired)
            aws.sync_security_group(desired)
    elif kind == LOAD_BALANCER:
        if action.op == DELETE:
            aws.delete_load_balancer(action.name)
        else:
            assert isinstance(desired, LoadBalancerSpec)
            if action.op == CREATE:
                aws.create_load_balancer(desired)  # ELBv2 answers an identical create with the LB
            else:
                assert isinstance(live, LoadBalancerSpec)
                aws.update_load_balancer(desired, live)
    elif kind == LISTENER:
        if action.op == DELETE:
            assert isinstance(live, ListenerSpec)
            aws.delete_listener(live)
        elif action.op == CREATE:
            assert isinstance(desired, ListenerSpec)
            aws.create_listener(desired)
        else:
            assert isinstance(desired, ListenerSpec)
            assert isinstance(live, ListenerSpec)
            aws.update_listener(desired, live)
    elif kind == ROLE:
        if action.op == DELETE:
            aws.delete_role(action.name)
        else:
            assert isinstance(desired, RoleSpec)
            aws.sync_role(desired)


def _create_bare_groups(plan: Plan, cloud: Cloud) -> None:
    """Create every security group the plan creates, without rules (rules may name them)."""
    creates = [a for a in plan.actions if a.kind == SECURITY_GROUP and a.op == CREATE]
    if not creates or cloud.aws is None:
        return
    existing = cloud.aws.group_ids()
    for action in creates:
        if action.name not in existing:
            assert isinstance(action.desired, SecurityGroupSpec)
            cloud.aws.create_security_group(action.desired)


def apply_plan(plan: Plan, cloud: Cloud) -> ApplyResult:
    done: list[Action] = []
    bare_made = False
    for index, action in enumerate(plan.actions):
        try:
            if action.kind == SECURITY_GROUP and action.op != DELETE and not bare_made:
                _create_bare_groups(plan, cloud)
                bare_made = True
            run_action(action, cloud)
        except Exception as exc:
            if isinstance(exc, KlinkError):
                message = exc.message
                log.warning("infra %s/%s: %s failed: %s", plan.app, plan.env, action.line, exc)
            else:  # a bug, not the cloud: keep the traceback in the log, record the failure
                message = f"internal error ({type(exc).__name__}: {exc}); see the server log"
                log.exception("infra %s/%s: %s failed", plan.app, plan.env, action.line)
            return ApplyResult(
                FAILED,
                done=tuple(done),
                failed=action,
                error=message,
                not_done=plan.actions[index + 1 :],
            )
        done.append(action)
    return ApplyResult(SUCCEEDED, done=tuple(done))
