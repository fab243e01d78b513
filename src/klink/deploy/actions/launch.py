"""Launch actions: the target group's launch template, the group at size 0, then its size.

Each is idempotent on names: creating what exists returns it as it is, so a resumed
deployment, or an undo whose old group still exists, finds these steps already done.
"""

from __future__ import annotations

from klink.deploy.actions.common import GONE_SECONDS, find_group, wait
from klink.deploy.actions.discover import TAG_KEPT
from klink.deploy.actions.registry import action
from klink.deploy.context import Context
from klink.deploy.model import Done, Failed, Outcome
from klink.deploy.preparation import HealthGate
from klink.providers.base import (
    IN_SERVICE,
    TERMINATED,
    TERMINATING,
    BlockDevice,
    GroupSpec,
    LaunchTemplateSpec,
)

ADD_TO_LOAD_BALANCER = "AddToLoadBalancer"


def _being_deleted(ctx: Context) -> Outcome | None:
    """An undo may find the group it restores still being deleted: wait until it is gone,
    then recreate it from the recorded state."""
    group = find_group(ctx, ctx.target)
    if group is not None and group.status is not None:
        return wait(ctx, GONE_SECONDS, f"{group.name}: {group.status}; recreating it after")
    return None


@action("create_launch_template")
def create_launch_template(ctx: Context) -> Outcome:
    target = ctx.target
    if target is None or target.launch is None:
        return Failed("nothing to launch: the target state has no launch template")
    deleting = _being_deleted(ctx)
    if deleting is not None:
        return deleting
    if find_group(ctx, target) is not None:
        return Done(f"group {target.name} exists; its launch template is kept")
    lt = target.launch
    ctx.provider().create_launch_template(
        LaunchTemplateSpec(
            name=lt.name,
            image_id=lt.image_id,
            instance_type=lt.instance_type,
            user_data=lt.user_data,
            security_group_ids=lt.security_group_ids,
            instance_profile=lt.instance_profile,
            key_name=lt.key_name,
            block_devices=tuple(BlockDevice(**b) for b in lt.block_devices),
            tags=dict(lt.tags),
        )
    )
    return Done(f"launch template {lt.name} ({lt.image_id}, {lt.instance_type})")


@action("create_group")
def create_group(ctx: Context) -> Outcome:
    target = ctx.target
    assert target is not None
    assert target.launch is not None
    deleting = _being_deleted(ctx)
    if deleting is not None:
        return deleting
    if find_group(ctx, target) is not None:
        return Done(f"group {target.name} exists")
    ctx.provider().create_group(
        GroupSpec(
            name=target.name,
            launch_template=target.launch.name,
            min_size=0,
            max_size=0,
            desired_capacity=0,
            subnets=target.subnets,
            default_cooldown=target.default_cooldown,
            health_check_type=target.health_check_type,
            health_check_grace_period=target.health_check_grace_period,
            termination_policies=target.termination_policies,
            # Over weights the group joins its balancers by ``attach_traffic``, never directly.
            target_groups=() if target.weighted else target.target_groups,
            tags=dict(target.tags),
            suspended_processes=(ADD_TO_LOAD_BALANCER,),
        )
    )
    return Done(f"group {target.name} created at size 0 with {ADD_TO_LOAD_BALANCER} suspended")


@action("resize_group")
def resize_group(ctx: Context) -> Outcome:
    target = ctx.target
    assert target is not None
    group = find_group(ctx, target)
    if group is None:
        return Failed(f"group {target.name} is missing")
    sizes = (target.min_size, target.max_size, target.desired_capacity)
    if (group.min_size, group.max_size, group.desired_capacity) != sizes:
        ctx.provider().resize_group(
            target.name,
            min_size=target.min_size,
            max_size=target.max_size,
            desired_capacity=target.desired_capacity,
        )
    return Done(f"group {target.name} sized min {sizes[0]} max {sizes[1]} desired {sizes[2]}")


def _gate(ctx: Context) -> HealthGate:
    target = ctx.target
    assert target is not None
    return target.health


def _live(ctx: Context) -> tuple[int, int, int]:
    """(wanted, existing, in service) instances of the target group."""
    target = ctx.target
    assert target is not None
    group = find_group(ctx, target)
    if group is None:
        return target.desired_capacity, 0, 0
    alive = [i for i in group.instances if i.lifecycle_state not in (TERMINATING, TERMINATED)]
    in_service = [i for i in alive if i.lifecycle_state == IN_SERVICE]
    return target.desired_capacity, len(alive), len(in_service)


@action("wait_instances_exist")
def wait_instances_exist(ctx: Context) -> Outcome:
    wanted, existing, _ = _live(ctx)
    if existing >= wanted:
        return Done(f"{existing} instances exist")
    gate = _gate(ctx)
    return wait(ctx, gate.timeout, f"{existing}/{wanted} instances", gate.interval)


@action("wait_instances_in_service")
def wait_instances_in_service(ctx: Context) -> Outcome:
    wanted, _, in_service = _live(ctx)
    if in_service >= wanted:
        return Done(f"{in_service} instances in service")
    gate = _gate(ctx)
    return wait(ctx, gate.timeout, f"{in_service}/{wanted} instances in service", gate.interval)


@action("suspend_launch_terminate")
def suspend_launch_terminate(ctx: Context) -> Outcome:
    target = ctx.target
    assert target is not None
    ctx.provider().suspend_processes(target.name, ["Launch", "Terminate"])
    return Done()


@action("tag_group_deployed")
def tag_group_deployed(ctx: Context) -> Outcome:
    target = ctx.target
    assert target is not None
    ctx.provider().tag_group(target.name, {**dict(target.tags), TAG_KEPT: "false"})
    return Done()


@action("scale_down_after_deployment")
def scale_down_after_deployment(ctx: Context) -> Outcome:
    """Deployed at ``desiredCapacity`` to take traffic warm, then scaled down to ``min``."""
    target = ctx.target
    if target is None:
        return Done()
    ctx.provider().resize_group(
        target.name,
        min_size=target.min_size,
        max_size=target.max_size,
        desired_capacity=target.min_size,
    )
    return Done(f"{target.name} scaled down to {target.min_size}")
