"""Discovery: the previous state comes from the provider, never from Klink's own history.

The current group of app+env is the newest group matching ``names.group_pattern`` exactly and
not tagged as kept out of traffic; each action reads one part of it into ``previous_state``.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from klink import names
from klink.deploy.actions.registry import action
from klink.deploy.context import Context
from klink.deploy.model import Done, GroupState, LaunchState, Outcome
from klink.errors import NotFound
from klink.providers import base
from klink.providers.base import Group, Provider

TAG_KEPT = "klink:kept"  # "true" on a group kept out of traffic by keepPreviousGroup


def _strip(item: Any) -> dict[str, Any]:
    data = asdict(item)
    data.pop("group", None)
    data.pop("id", None)
    for key, value in list(data.items()):
        if isinstance(value, tuple):
            data[key] = list(value)
        elif hasattr(value, "isoformat"):
            data[key] = value.isoformat()
    return data


def group_state(provider: Provider, group: Group) -> GroupState:
    """Everything needed to recreate ``group``, read from the provider."""
    launch = None
    if group.launch_template:
        try:
            lt = provider.describe_launch_template(group.launch_template)
            launch = LaunchState(
                name=lt.name,
                image_id=lt.image_id,
                instance_type=lt.instance_type,
                user_data=lt.user_data,
                security_group_ids=tuple(lt.security_group_ids),
                instance_profile=lt.instance_profile,
                key_name=lt.key_name,
                block_devices=tuple(asdict(b) for b in lt.block_devices),
                tags=dict(lt.tags),
            )
        except NotFound:
            launch = None
    return GroupState(
        name=group.name,
        launch=launch,
        min_size=group.min_size,
        max_size=group.max_size,
        desired_capacity=group.desired_capacity,
        image_id=launch.image_id if launch else None,
        version=group.tags.get(base.TAG_VERSION),
        config_commit=group.tags.get(base.TAG_CONFIG_COMMIT),
        subnets=tuple(group.subnets),
        default_cooldown=group.default_cooldown,
        health_check_type=group.health_check_type,
        health_check_grace_period=group.health_check_grace_period,
        termination_policies=tuple(group.termination_policies),
        target_groups=tuple(group.target_groups),
        suspended_processes=tuple(sorted(group.suspended_processes)),
        tags={k: v for k, v in group.tags.items() if k != TAG_KEPT},
    )


def current_group(provider: Provider, app: str, env: str) -> Group | None:
    for group in provider.list_groups(names.group_pattern(app, env).pattern):
        if group.tags.get(TAG_KEPT) != "true" and group.status is None:
            return group
    return None


@action("discover_previous_group")
def discover_previous_group(ctx: Context) -> Outcome:
    group = current_group(ctx.provider(), ctx.deployment.app, ctx.deployment.env)
    if group is None:
        ctx.deployment.previous_state = None
        return Done("no previous group: first deployment")
    state = GroupState(
        name=group.name,
        launch=None,
        min_size=group.min_size,
        max_size=group.max_size,
        desired_capacity=group.desired_capacity,
    )
    ctx.deployment.previous_state = state.to_json()
    return Done(f"previous group {group.name}")


@action("discover_previous_launch_template")
def discover_previous_launch_template(ctx: Context) -> Outcome:
    previous = ctx.previous
    if previous is None:
        return Done()
    provider = ctx.provider()
    state = group_state(provider, provider.describe_group(previous.name))
    ctx.deployment.previous_state = state.to_json()
    return Done(f"previous image {state.image_id}, config {state.config_commit}")


def _update_previous(ctx: Context, **changes: Any) -> None:
    previous = ctx.previous
    if previous is not None:
        ctx.deployment.previous_state = replace(previous, **changes).to_json()


@action("discover_previous_policies")
def discover_previous_policies(ctx: Context) -> Outcome:
    previous = ctx.previous
    if previous is not None:
        found = ctx.provider().list_scaling_policies(previous.name)
        _update_previous(ctx, policies=tuple(_strip(p) for p in found))
    return Done()


@action("discover_previous_alarms")
def discover_previous_alarms(ctx: Context) -> Outcome:
    previous = ctx.previous
    if previous is not None:
        found = ctx.provider().list_alarms(previous.name)
        _update_previous(ctx, alarms=tuple(_strip(a) for a in found))
    return Done()


@action("discover_previous_scheduled_actions")
def discover_previous_scheduled_actions(ctx: Context) -> Outcome:
    previous = ctx.previous
    if previous is not None:
        found = ctx.provider().list_scheduled_actions(previous.name)
        _update_previous(ctx, scheduled_actions=tuple(_strip(s) for s in found))
    return Done()


@action("find_kept_group")
def find_kept_group(ctx: Context) -> Outcome:
    """A rollback re-enables a group kept by ``keepPreviousGroup`` when it runs the image."""
    if ctx.deployment.kind != "rollback":
        return Done()
    provider = ctx.provider()
    pattern = names.group_pattern(ctx.deployment.app, ctx.deployment.env).pattern
    for group in provider.list_groups(pattern):
        if group.tags.get(TAG_KEPT) != "true" or group.status is not None:
            continue
        state = group_state(provider, group)
        if state.image_id == ctx.deployment.image and state.launch is not None:
            policies = tuple(_strip(p) for p in provider.list_scaling_policies(group.name))
            alarms = tuple(_strip(a) for a in provider.list_alarms(group.name))
            scheduled = tuple(_strip(s) for s in provider.list_scheduled_actions(group.name))
            state = replace(
                state,
                suspended_processes=(),
                policies=policies,
                alarms=alarms,
                scheduled_actions=scheduled,
            )
            ctx.facts["kept_group"] = state.to_json()
            return Done(f"kept group {group.name} runs {state.image_id}: re-enabling it")
    return Done()
