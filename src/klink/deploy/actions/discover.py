"""Discovery: the previous state comes from the provider, never from Klink's own history.

The current group of app+env is the newest group matching ``names.group_pattern`` exactly and
not tagged as kept out of traffic; each action reads one part of it into ``previous_state``.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from klink import names
from klink.config.params import AlarmParams, PolicyParams, ScheduledActionParams
from klink.deploy.actions.registry import action
from klink.deploy.context import Context
from klink.deploy.model import Done, GroupState, LaunchState, Outcome
from klink.deploy.preparation import TAG_HEALTH, TAG_TRAFFIC, HealthGate
from klink.errors import NotFound
from klink.providers import base
from klink.providers.base import TAG_ROLE, Group, Provider

TAG_KEPT = "klink:kept"  # "true" on a group kept out of traffic by keepPreviousGroup


def _policy(item: base.ScalingPolicy) -> dict[str, Any]:
    return dict(PolicyParams.from_provider(item).to_json())


def _alarm(item: base.Alarm) -> dict[str, Any]:
    return dict(AlarmParams.from_provider(item).to_json())


def _scheduled(item: base.ScheduledAction) -> dict[str, Any]:
    return dict(ScheduledActionParams.from_provider(item).to_json())


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
    # A group deployed over weights names its balancers in a tag (on AWS its own target groups
    # are the member ones, not the app's); one without the tag was registered directly.
    members = [n for n in group.tags.get(TAG_TRAFFIC, "").split(",") if n]
    weighted = TAG_TRAFFIC in group.tags
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
        target_groups=tuple(members) if weighted else tuple(group.target_groups),
        suspended_processes=tuple(sorted(group.suspended_processes)),
        tags={k: v for k, v in group.tags.items() if k != TAG_KEPT},
        health=HealthGate.from_tag(group.tags.get(TAG_HEALTH)),
        weighted=weighted,
    )


def in_service(group: Group) -> bool:
    """Whether ``group`` can be the group in service: neither kept out of traffic, nor being
    deleted, nor a canary's baseline."""
    baseline = group.tags.get(TAG_ROLE) == "baseline"
    return group.tags.get(TAG_KEPT) != "true" and group.status is None and not baseline


def current_group(provider: Provider, app: str, env: str) -> Group | None:
    """The newest group of app+env that can be in service."""
    for group in provider.list_groups(names.group_pattern(app, env).pattern):
        if in_service(group):
            return group
    return None


@action("discover_previous_group", reads=True)
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


@action("discover_previous_launch_template", reads=True)
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


@action("discover_previous_policies", reads=True)
def discover_previous_policies(ctx: Context) -> Outcome:
    previous = ctx.previous
    if previous is not None:
        found = ctx.provider().list_scaling_policies(previous.name)
        _update_previous(ctx, policies=tuple(_policy(p) for p in found))
    return Done()


@action("discover_previous_alarms", reads=True)
def discover_previous_alarms(ctx: Context) -> Outcome:
    previous = ctx.previous
    if previous is not None:
        found = ctx.provider().list_alarms(previous.name)
        _update_previous(ctx, alarms=tuple(_alarm(a) for a in found))
    return Done()


@action("discover_previous_scheduled_actions", reads=True)
def discover_previous_scheduled_actions(ctx: Context) -> Outcome:
    previous = ctx.previous
    if previous is not None:
        found = ctx.provider().list_scheduled_actions(previous.name)
        _update_previous(ctx, scheduled_actions=tuple(_scheduled(s) for s in found))
    return Done()


@action("find_kept_group", reads=True)
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
            policies = tuple(_policy(p) for p in provider.list_scaling_policies(group.name))
            alarms = tuple(_alarm(a) for a in provider.list_alarms(group.name))
            scheduled = tuple(_scheduled(s) for s in provider.list_scheduled_actions(group.name))
            state = replace(
                state,
                suspended_processes=(),
                policies=policies,
                alarms=alarms,
                scheduled_actions=scheduled,
            )
            ctx.update(kept_group=state.to_json())
            return Done(f"kept group {group.name} runs {state.image_id}: re-enabling it")
    return Done()
