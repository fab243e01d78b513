"""Traffic actions: resume the target group's processes, register it whole with its target
groups, then give it its scaling policies, alarms and scheduled actions. Group-level calls only:
their cost does not grow with the number of instances. Policies, alarms and scheduled actions
are stored in a group's state as the deployment-params models' JSON and converted by the models'
own ``to_provider``.
"""

from __future__ import annotations

from klink.config.params import AlarmParams, PolicyParams, ScheduledActionParams
from klink.deploy.actions.common import find_group
from klink.deploy.actions.registry import action
from klink.deploy.context import Context
from klink.deploy.model import Done, Failed, Outcome
from klink.providers.base import IN_SERVICE, PENDING, PROCESSES


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


@action("create_policies")
def create_policies(ctx: Context) -> Outcome:
    target = ctx.target
    assert target is not None
    for item in target.policies:
        ctx.provider().put_scaling_policy(
            PolicyParams.model_validate(item).to_provider(target.name)
        )
    return Done(f"{len(target.policies)} scaling policies on {target.name}")


@action("create_alarms")
def create_alarms(ctx: Context) -> Outcome:
    target = ctx.target
    assert target is not None
    for item in target.alarms:
        ctx.provider().put_alarm(AlarmParams.model_validate(item).to_provider(target.name))
    return Done(f"{len(target.alarms)} alarms on {target.name}")


@action("create_scheduled_actions")
def create_scheduled_actions(ctx: Context) -> Outcome:
    target = ctx.target
    assert target is not None
    for item in target.scheduled_actions:
        model = ScheduledActionParams.model_validate(item)
        ctx.provider().put_scheduled_action(model.to_provider(target.name))
    return Done(f"{len(target.scheduled_actions)} scheduled actions on {target.name}")
