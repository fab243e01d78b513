"""Retire actions: the old group out of traffic, then deleted (or kept, out of traffic).

Every action is a no-op when there is no old group or it is already gone, so the same steps
serve a first deployment, a resumed one, and an undo of a half-finished one.
"""

from __future__ import annotations

from datetime import timedelta

from klink.deploy.actions.common import GONE_ATTEMPTS, find_group, wait
from klink.deploy.actions.discover import TAG_KEPT
from klink.deploy.actions.registry import action
from klink.deploy.context import Context
from klink.deploy.model import Done, Outcome

RETIRE_SUSPEND = (
    "Launch",
    "Terminate",
    "AddToLoadBalancer",
    "AlarmNotification",
    "ScheduledActions",
    "AZRebalance",
    "ReplaceUnhealthy",
)
KEEP_DAYS = 7


@action("suspend_old_processes")
def suspend_old_processes(ctx: Context) -> Outcome:
    old = ctx.retiring
    if find_group(ctx, old) is None:
        return Done("no old group")
    assert old is not None
    ctx.provider().suspend_processes(old.name, list(RETIRE_SUSPEND))
    return Done(f"processes suspended on {old.name}")


def _old_ids(ctx: Context) -> set[str]:
    group = find_group(ctx, ctx.retiring)
    return {i.id for i in group.instances} if group else set()


@action("deregister_old_instances")
def deregister_old_instances(ctx: Context) -> Outcome:
    old = ctx.retiring
    ids = sorted(_old_ids(ctx))
    if old is None or not ids:
        return Done("nothing to deregister")
    for name in old.target_groups:
        ctx.provider().deregister_instances(name, ids)
    return Done(f"{len(ids)} instances of {old.name} draining")


@action("wait_old_drained")
def wait_old_drained(ctx: Context) -> Outcome:
    old = ctx.retiring
    ids = _old_ids(ctx)
    if old is None or not ids:
        return Done()
    still: list[str] = []
    for name in old.target_groups:
        for target in ctx.provider().target_health(name):
            if target.instance_id in ids and target.state not in ("unused",):
                still.append(f"{target.instance_id}@{name}:{target.state}")
    if not still:
        return Done(f"{old.name} is out of traffic")
    return wait(ctx, GONE_ATTEMPTS, "draining " + ", ".join(sorted(still)[:5]))


@action("delete_old_alarms")
def delete_old_alarms(ctx: Context) -> Outcome:
    old = ctx.retiring
    if find_group(ctx, old) is None:
        return Done()
    assert old is not None
    names = [a.name for a in ctx.provider().list_alarms(old.name)]
    if names:
        ctx.provider().delete_alarms(old.name, names)
    return Done(f"{len(names)} alarms deleted")


@action("delete_old_policies")
def delete_old_policies(ctx: Context) -> Outcome:
    old = ctx.retiring
    if find_group(ctx, old) is None:
        return Done()
    assert old is not None
    policies = ctx.provider().list_scaling_policies(old.name)
    for policy in policies:
        ctx.provider().delete_scaling_policy(old.name, policy.name)
    return Done(f"{len(policies)} scaling policies deleted")


@action("delete_old_scheduled_actions")
def delete_old_scheduled_actions(ctx: Context) -> Outcome:
    old = ctx.retiring
    if find_group(ctx, old) is None:
        return Done()
    assert old is not None
    scheduled = ctx.provider().list_scheduled_actions(old.name)
    for item in scheduled:
        ctx.provider().delete_scheduled_action(old.name, item.name)
    return Done(f"{len(scheduled)} scheduled actions deleted")


@action("keep_old_group")
def keep_old_group(ctx: Context) -> Outcome:
    old = ctx.retiring
    if find_group(ctx, old) is None:
        return Done()
    assert old is not None
    until = (ctx.now() + timedelta(days=KEEP_DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ctx.provider().tag_group(old.name, {TAG_KEPT: "true", "klink:remove-after": until})
    return Done(f"{old.name} kept out of traffic (remove after {until})")


@action("delete_old_group")
def delete_old_group(ctx: Context) -> Outcome:
    old = ctx.retiring
    if old is None or not ctx.provider().group_exists(old.name):
        return Done()
    ctx.provider().delete_group(old.name, force=True)
    return Done(f"deleting {old.name}")


@action("wait_old_group_gone")
def wait_old_group_gone(ctx: Context) -> Outcome:
    old = ctx.retiring
    if old is None or not ctx.provider().group_exists(old.name):
        return Done()
    return wait(ctx, GONE_ATTEMPTS, f"{old.name} is still being deleted")


@action("delete_old_launch_template")
def delete_old_launch_template(ctx: Context) -> Outcome:
    old = ctx.retiring
    if old is None or old.launch is None:
        return Done()
    ctx.provider().delete_launch_template(old.launch.name)
    return Done(f"launch template {old.launch.name} deleted")
