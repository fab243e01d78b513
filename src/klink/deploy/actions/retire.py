"""Retire actions: the old group out of traffic, then deleted (or kept, out of traffic).

Over weights the old group has left its balancers already (``detach_traffic``); the steps
here take out what was registered directly (groups deployed before weights) and wait until the
balancer has drained either kind.

Every action is a no-op when there is no old group or it is already gone, so the same steps
serve a first deployment, a resumed one, and an undo of a half-finished one.
"""

from __future__ import annotations

from datetime import timedelta

from klink.deploy.actions.common import GONE_SECONDS, find_group, wait
from klink.deploy.actions.discover import TAG_KEPT
from klink.deploy.actions.registry import action
from klink.deploy.context import Context
from klink.deploy.model import Done, Outcome
from klink.errors import NotFound
from klink.providers.base import GroupTraffic

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
TAG_REMOVE_AFTER = "klink:remove-after"  # read by ``deploy/expiry.py``


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
    if old.weighted:
        return Done(f"{old.name} is not registered directly")  # detach_traffic took it out
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
        if old.weighted:
            member = _member_of(ctx, name, old.name)
            if member is not None and member.registered + member.draining:
                still.append(f"{old.name}@{name}:{member.registered + member.draining} left")
            continue
        for target in ctx.provider().target_health(name):
            if target.instance_id in ids and target.state not in ("unused",):
                still.append(f"{target.instance_id}@{name}:{target.state}")
    if not still:
        return Done(f"{old.name} is out of traffic")
    return wait(ctx, GONE_SECONDS, "draining " + ", ".join(sorted(still)[:5]))


def _member_of(ctx: Context, target_group: str, group: str) -> GroupTraffic | None:
    try:
        return ctx.provider().traffic(target_group).get(group)
    except NotFound:
        return None


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
    ctx.provider().tag_group(old.name, {TAG_KEPT: "true", TAG_REMOVE_AFTER: until})
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
    return wait(ctx, GONE_SECONDS, f"{old.name} is still being deleted")


@action("delete_old_launch_template")
def delete_old_launch_template(ctx: Context) -> Outcome:
    old = ctx.retiring
    if old is None or old.launch is None:
        return Done()
    ctx.provider().delete_launch_template(old.launch.name)
    return Done(f"launch template {old.launch.name} deleted")


def _stale_kept(ctx: Context) -> list[str]:
    """Groups kept by earlier deployments: neither in traffic now nor the one just kept."""
    from klink import names

    keep = {s.name for s in (ctx.target, ctx.retiring) if s is not None}
    pattern = names.group_pattern(ctx.deployment.app, ctx.deployment.env).pattern
    return [
        g.name
        for g in ctx.provider().list_groups(pattern)
        if g.tags.get(TAG_KEPT) == "true" and g.name not in keep
    ]


@action("delete_stale_kept_groups")
def delete_stale_kept_groups(ctx: Context) -> Outcome:
    """Only the latest kept group stays: older ones are deleted with their launch templates."""
    stale = dict(ctx.prep.stale_kept)
    for name in _stale_kept(ctx):
        group = ctx.provider().describe_group(name)
        stale[name] = group.launch_template
        ctx.update(stale_kept=stale)  # recorded before the delete: a crash finds it again
        ctx.provider().delete_group(name, force=True)
    return Done(f"deleting {len(stale)} older kept groups" if stale else None)


@action("wait_stale_kept_groups_gone")
def wait_stale_kept_groups_gone(ctx: Context) -> Outcome:
    left = [n for n in ctx.prep.stale_kept if ctx.provider().group_exists(n)]
    if not left:
        return Done()
    return wait(ctx, GONE_SECONDS, "still being deleted: " + ", ".join(left))


@action("delete_stale_kept_launch_templates")
def delete_stale_kept_launch_templates(ctx: Context) -> Outcome:
    templates = [t for t in ctx.prep.stale_kept.values() if t]
    for template in templates:
        ctx.provider().delete_launch_template(template)
    return Done(f"{len(templates)} launch templates deleted" if templates else None)
