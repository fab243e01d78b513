"""Traffic actions: resume the target group's processes, register it whole with its target
groups, then give it its scaling policies, alarms and scheduled actions. Group-level calls only:
their cost does not grow with the number of instances.
"""

from __future__ import annotations

from typing import Any

from klink.deploy.actions.common import find_group
from klink.deploy.actions.registry import action
from klink.deploy.context import Context
from klink.deploy.model import Done, Failed, Outcome
from klink.providers.base import (
    IN_SERVICE,
    PENDING,
    PROCESSES,
    Alarm,
    ScalingPolicy,
    ScheduledAction,
)


@action("resume_processes")
def resume_processes(ctx: Context) -> Outcome:
    target = ctx.target
    assert target is not None
    keep = set(target.suspended_processes)
    ctx.provider().resume_processes(target.name, [p for p in PROCESSES if p not in keep])
    return Done(f"processes resumed on {target.name}")


@action("register_target_groups")
def register_target_groups(ctx: Context) -> Outcome:
    target = ctx.target
    assert target is not None
    if not target.target_groups:
        return Done("no target groups")
    group = find_group(ctx, target)
    if group is None:
        return Failed(f"group {target.name} is missing")
    ids = [i.id for i in group.instances if i.lifecycle_state in (IN_SERVICE, PENDING)]
    for name in target.target_groups:
        ctx.provider().register_instances(name, ids)
    return Done(f"{len(ids)} instances registered with {', '.join(target.target_groups)}")


def _known(fields: dict[str, Any], cls: type) -> dict[str, Any]:
    allowed = set(getattr(cls, "__dataclass_fields__", {}))
    return {k: v for k, v in fields.items() if k in allowed}


_CAMEL = {
    "policyType": "policy_type",
    "adjustmentType": "adjustment_type",
    "scalingAdjustment": "scaling_adjustment",
    "targetValue": "target_value",
    "predefinedMetric": "predefined_metric",
    "metricName": "metric_name",
    "evaluationPeriods": "evaluation_periods",
    "minSize": "min_size",
    "maxSize": "max_size",
    "desiredCapacity": "desired_capacity",
    "startTime": "start_time",
}


def snake(item: dict[str, Any]) -> dict[str, Any]:
    return {_CAMEL.get(k, k): v for k, v in item.items()}


def policy_of(group: str, item: dict[str, Any]) -> ScalingPolicy:
    return ScalingPolicy(**{**_known(snake(item), ScalingPolicy), "group": group, "id": None})


def alarm_of(group: str, item: dict[str, Any]) -> Alarm:
    fields = _known(snake(item), Alarm)
    fields["policies"] = tuple(fields.get("policies") or ())
    return Alarm(**{**fields, "group": group})


def scheduled_of(group: str, item: dict[str, Any]) -> ScheduledAction:
    fields = _known(snake(item), ScheduledAction)
    if isinstance(fields.get("start_time"), str):
        from datetime import datetime

        fields["start_time"] = datetime.fromisoformat(fields["start_time"])
    return ScheduledAction(**{**fields, "group": group})


@action("create_policies")
def create_policies(ctx: Context) -> Outcome:
    target = ctx.target
    assert target is not None
    for item in target.policies:
        ctx.provider().put_scaling_policy(policy_of(target.name, item))
    return Done(f"{len(target.policies)} scaling policies on {target.name}")


@action("create_alarms")
def create_alarms(ctx: Context) -> Outcome:
    target = ctx.target
    assert target is not None
    for item in target.alarms:
        ctx.provider().put_alarm(alarm_of(target.name, item))
    return Done(f"{len(target.alarms)} alarms on {target.name}")


@action("create_scheduled_actions")
def create_scheduled_actions(ctx: Context) -> Outcome:
    target = ctx.target
    assert target is not None
    for item in target.scheduled_actions:
        ctx.provider().put_scheduled_action(scheduled_of(target.name, item))
    return Done(f"{len(target.scheduled_actions)} scheduled actions on {target.name}")
