"""Preparation actions: reads only. A failure marks the deployment ``invalid``.

They read the request, the app and env metadata, the config files at one commit, the image,
the network, and produce everything the deployment phase needs as facts: names, tags,
user-data, policies, alarms, scheduled actions and finally the new group state and the plan.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from klink import names
from klink.config.params import (
    application_properties_problems,
    launch_commands,
    parse_deployment_params,
)
from klink.deploy import lifecycle, userdata
from klink.deploy import plan as planner
from klink.deploy.actions.registry import action
from klink.deploy.context import Context
from klink.deploy.model import DEPLOY, PREPARE, Done, Failed, GroupState, LaunchState, Outcome
from klink.deploy.preparation import TAG_HEALTH, TAG_TRAFFIC, HealthGate, ImageFacts, Names
from klink.deploy.strategies import strategy_of
from klink.errors import InvalidInput, NotFound
from klink.providers import base

_HEX40 = re.compile(r"^[0-9a-f]{40}$")
CONFIG_FILES = ("application-properties.json", "deployment-params.json", "launch-data.json")


@action("validate_request", reads=True)
def validate_request(ctx: Context) -> Outcome:
    d = ctx.deployment
    names.check_name(d.app, "app")
    names.check_name(d.env, "env")
    if not d.image or not isinstance(d.image, str):
        return Failed("an image is required")
    if not d.message.strip():
        return Failed("a message is required")
    return Done(f"deploying {d.image} to {d.app}/{d.env}: {d.message}")


@action("read_application", reads=True)
def read_application(ctx: Context) -> Outcome:
    try:
        record = ctx.services.metadata.application(ctx.deployment.app)
    except NotFound:
        return Failed(f"application {ctx.deployment.app!r} does not exist")
    ctx.update(application=dict(record.get("metadata") or {}))
    return Done()


@action("check_not_blocked", reads=True)
def check_not_blocked(ctx: Context) -> Outcome:
    blocked = ctx.prep.require("application").get("blocked")
    if blocked:
        if isinstance(blocked, dict):
            reason = f"{blocked.get('reason', '')} (by {blocked.get('user', '?')})"
        else:
            reason = str(blocked)
        return Failed(f"application {ctx.deployment.app!r} is blocked from deploying: {reason}")
    return Done()


@action("check_contact", reads=True)
def check_contact(ctx: Context) -> Outcome:
    contact = ctx.prep.require("application").get("contact")
    if not isinstance(contact, str) or not contact.strip():
        return Failed(f"application {ctx.deployment.app!r} has no contact; set one to deploy")
    return Done()


@action("read_environment", reads=True)
def read_environment(ctx: Context) -> Outcome:
    try:
        record = ctx.services.metadata.environment(ctx.deployment.env)
    except NotFound:
        return Failed(f"environment {ctx.deployment.env!r} does not exist")
    ctx.update(environment=dict(record.get("metadata") or {}))
    return Done()


@action("connect_provider", reads=True)
def connect_provider(ctx: Context) -> Outcome:
    provider = ctx.provider()
    ctx.update(provider=provider.name, http_probes=bool(provider.http_probes))
    return Done(f"provider {provider.name}")


@action("resolve_config_commit", reads=True)
def resolve_config_commit(ctx: Context) -> Outcome:
    d = ctx.deployment
    if d.config_commit:
        # Resolved once: a retry or a resumed preparation never moves to a newer HEAD.
        return Done(f"config commit {d.config_commit} (resolved before)")
    commit, _ = ctx.services.config.file(d.app, d.env, CONFIG_FILES[0], d.commit or "HEAD")
    d.config_commit = commit
    return Done(f"config commit {commit}")


@action("verify_config_commit", reads=True)
def verify_config_commit(ctx: Context) -> Outcome:
    commit = ctx.deployment.config_commit or ""
    if not _HEX40.fullmatch(commit):
        return Failed(f"config commit {commit!r} is not a full commit hash")
    requested = ctx.deployment.commit
    if requested and _HEX40.fullmatch(requested) and requested != commit:
        return Failed(f"config commit {requested} resolved to {commit}")
    return Done()


def _read(ctx: Context, name: str) -> Any:
    d = ctx.deployment
    commit, data = ctx.services.config.file(d.app, d.env, name, d.config_commit or "HEAD")
    if commit != d.config_commit:
        raise InvalidInput(f"{name} resolved to {commit}, not {d.config_commit}", field="commit")
    return data


@action("read_application_properties", reads=True)
def read_application_properties(ctx: Context) -> Outcome:
    data = _read(ctx, "application-properties.json")
    problems = application_properties_problems(data)
    if problems:
        return Failed("application-properties.json: " + "; ".join(map(str, problems)))
    ctx.update(properties=data)
    return Done()


@action("read_deployment_params", reads=True)
def read_deployment_params(ctx: Context) -> Outcome:
    ctx.update(params_raw=_read(ctx, "deployment-params.json"))
    return Done()


@action("read_launch_data", reads=True)
def read_launch_data(ctx: Context) -> Outcome:
    ctx.update(launch_data=tuple(launch_commands(_read(ctx, "launch-data.json"))))
    return Done()


@action("validate_deployment_params", reads=True)
def validate_deployment_params(ctx: Context) -> Outcome:
    provider = "aws" if ctx.prep.provider == "aws" else "local"
    parsed = parse_deployment_params(ctx.prep.params_raw, provider=provider)
    note = ""
    if parsed.strategy == "canary" and ctx.deployment.kind == "rollback":
        # A rollback goes back to a version that ran here: no canary stands in its way.
        parsed = parsed.model_copy(update={"strategy": "redblack", "canary": None})
        note = " (a rollback skips the canary)"
    ctx.update(params=parsed.to_json())
    strategy = strategy_of(parsed.strategy)
    return Done(f"strategy {parsed.strategy}: {strategy.description}{note}")


@action("validate_capacity", reads=True)
def validate_capacity(ctx: Context) -> Outcome:
    params = ctx.params()
    if params.max > 1000:
        return Failed(f"max {params.max} is more than 1000 instances")
    return Done(f"capacity {params.min}/{params.desired_capacity}/{params.max}")


@action("describe_image", reads=True)
def describe_image(ctx: Context) -> Outcome:
    try:
        image = ctx.provider().describe_image(ctx.deployment.image or "")
    except NotFound:
        return Failed(f"image {ctx.deployment.image!r} does not exist")
    if image.state != "available":
        return Failed(f"image {image.id} is {image.state}, not available")
    ctx.update(image=ImageFacts(image.id, image.name, dict(image.tags)))
    return Done(f"image {image.id} ({image.app} {image.version})")


@action("check_image_app", reads=True)
def check_image_app(ctx: Context) -> Outcome:
    app = ctx.prep.require("image").tags.get(base.TAG_APP)
    if app != ctx.deployment.app:
        return Failed(
            f"image {ctx.deployment.image} belongs to {app!r}, not {ctx.deployment.app!r}"
        )
    return Done()


@action("check_image_embargo", reads=True)
def check_image_embargo(ctx: Context) -> Outcome:
    raw = ctx.prep.require("image").tags.get(base.TAG_EMBARGO, "")
    embargo = {part.strip() for part in raw.split(",") if part.strip()}
    if ctx.deployment.env in embargo:
        return Failed(f"image {ctx.deployment.image} is embargoed from {ctx.deployment.env}")
    return Done()


@action("check_instance_type", reads=True)
def check_instance_type(ctx: Context) -> Outcome:
    instance_type = ctx.params().instance_type or "local"
    if ctx.prep.provider == "aws" and instance_type == "local":
        return Failed("instanceType is required on aws")
    arch = ctx.prep.require("image").tags.get("klink:architecture")
    family = instance_type.split(".", 1)[0]
    if arch == "arm64" and not family.endswith("g") and "g" not in family[2:]:
        return Failed(f"image {ctx.deployment.image} is arm64; {instance_type} is not")
    if arch == "x86_64" and re.fullmatch(r"[a-z]+\d+g[a-z]*", family):
        return Failed(f"image {ctx.deployment.image} is x86_64; {instance_type} is arm64")
    return Done()


@action("resolve_security_groups", reads=True)
def resolve_security_groups(ctx: Context) -> Outcome:
    wanted = ctx.params().security_groups
    ids = ctx.provider().security_group_ids(list(wanted)) if wanted else {}
    ctx.update(security_group_ids=tuple(ids[n] for n in wanted))
    return Done()


@action("resolve_subnets", reads=True)
def resolve_subnets(ctx: Context) -> Outcome:
    purpose = ctx.params().subnet_purpose
    subnets = ctx.provider().subnets(purpose)
    if purpose and not subnets:
        return Failed(f"no subnet is tagged for purpose {purpose!r}")
    ctx.update(subnets=tuple(s.id for s in subnets))
    return Done()


@action("resolve_target_groups", reads=True)
def resolve_target_groups(ctx: Context) -> Outcome:
    wanted = list(ctx.params().target_groups)
    previous = ctx.previous
    if not wanted and previous is not None:
        wanted = list(previous.target_groups)
    kept: list[str] = []
    for name in wanted:
        try:
            ctx.provider().describe_target_group(name)
        except NotFound:
            ctx.log(f"target group {name} no longer exists; leaving it out")
            continue
        kept.append(name)
    ctx.update(target_groups=tuple(kept))
    return Done(f"target groups: {', '.join(kept) or 'none'}")


@action("create_names", reads=True)
def create_names(ctx: Context) -> Outcome:
    d = ctx.deployment
    kept = GroupState.from_json(ctx.prep.kept_group)
    if kept is not None and kept.launch is not None:
        ctx.update(names=Names(kept.name, kept.launch.name))
        return Done(f"re-enabling kept group {kept.name}")
    pattern = names.group_pattern(d.app, d.env).pattern
    taken = [g.name for g in ctx.provider().list_groups(pattern)]
    previous = ctx.previous
    group = names.next_group_name(d.app, d.env, previous.name if previous else None, taken)
    ctx.update(names=Names(group, names.launch_template_name(group, ctx.now())))
    return Done(f"new group {group}")


@action("create_tags", reads=True)
def create_tags(ctx: Context) -> Outcome:
    d = ctx.deployment
    image_tags = ctx.prep.require("image").tags
    gate = HealthGate.of(ctx.params(), ctx.prep.require("properties"))
    tags = {
        "Name": ctx.prep.require("names").group,
        base.TAG_APP: d.app,
        base.TAG_ENV: d.env,
        base.TAG_VERSION: image_tags.get(base.TAG_VERSION, ""),
        base.TAG_CONFIG_COMMIT: d.config_commit or "",
        base.TAG_DEPLOYMENT: d.id,
        base.TAG_DEPLOYED_BY: d.user,
        base.TAG_DEPLOYED_AT: ctx.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        base.TAG_MANAGED_BY: "klink",
        TAG_HEALTH: gate.tag(),
    }
    if ctx.prep.target_groups:
        tags[TAG_TRAFFIC] = ",".join(ctx.prep.target_groups)
    ctx.update(tags=tags)
    return Done()


@action("generate_user_data", reads=True)
def generate_user_data(ctx: Context) -> Outcome:
    d = ctx.deployment
    prep = ctx.prep
    env_meta = prep.environment or {}
    user_data = userdata.render(
        app=d.app,
        env=d.env,
        group=prep.require("names").group,
        version=prep.require("image").tags.get(base.TAG_VERSION, ""),
        config_commit=d.config_commit or "",
        region=str(env_meta.get("region") or prep.provider or ""),
        properties=prep.require("properties"),
        launch_data=list(prep.launch_data),
    )
    ctx.update(user_data=user_data)
    return Done()


def _carry(ctx: Context, key: str, given: tuple[Any, ...] | None) -> tuple[dict[str, Any], ...]:
    """The params' own list when given (an empty list means none), else the previous group's."""
    if given is not None:
        return tuple(item.to_json() for item in given)
    previous = ctx.previous
    return tuple(dict(item) for item in getattr(previous, key, ())) if previous else ()


@action("generate_policies", reads=True)
def generate_policies(ctx: Context) -> Outcome:
    prep = ctx.update(policies=_carry(ctx, "policies", ctx.params().policies))
    return Done(f"{len(prep.policies)} scaling policies")


@action("generate_alarms", reads=True)
def generate_alarms(ctx: Context) -> Outcome:
    prep = ctx.update(alarms=_carry(ctx, "alarms", ctx.params().alarms))
    policy_names = {p.get("name") for p in prep.policies}
    for alarm in prep.alarms:
        missing = [p for p in alarm.get("policies", []) if p not in policy_names]
        if missing:
            return Failed(f"alarm {alarm.get('name')!r} names unknown policy {missing[0]!r}")
    return Done(f"{len(prep.alarms)} alarms")


@action("generate_scheduled_actions", reads=True)
def generate_scheduled_actions(ctx: Context) -> Outcome:
    given = ctx.params().scheduled_actions
    prep = ctx.update(scheduled_actions=_carry(ctx, "scheduled_actions", given))
    return Done(f"{len(prep.scheduled_actions)} scheduled actions")


@action("build_new_state", reads=True)
def build_new_state(ctx: Context) -> Outcome:
    prep = ctx.prep
    if prep.kept_group:
        ctx.deployment.new_state = {
            **prep.kept_group,
            "policies": list(prep.policies),
            "alarms": list(prep.alarms),
            "scheduled_actions": list(prep.scheduled_actions),
        }
        return Done()
    p = ctx.params()
    image, group_names = prep.require("image"), prep.require("names")
    state = GroupState(
        name=group_names.group,
        launch=LaunchState(
            name=group_names.launch_template,
            image_id=image.id,
            instance_type=p.instance_type or "local",
            user_data=prep.require("user_data"),
            security_group_ids=prep.security_group_ids,
            instance_profile=p.instance_profile,
            key_name=p.key_name,
            block_devices=tuple(asdict(device) for device in p.block_devices()),
            tags=dict(prep.tags),
        ),
        min_size=p.min,
        max_size=p.max,
        desired_capacity=p.desired_capacity,
        image_id=image.id,
        version=prep.tags.get(base.TAG_VERSION),
        config_commit=ctx.deployment.config_commit,
        subnets=prep.subnets,
        default_cooldown=p.default_cooldown,
        health_check_type=p.health_check_type,
        health_check_grace_period=p.health_check_grace_period,
        termination_policies=p.termination_policies,
        target_groups=prep.target_groups,
        tags=dict(prep.tags),
        policies=tuple(dict(x) for x in prep.policies),
        alarms=tuple(dict(x) for x in prep.alarms),
        scheduled_actions=tuple(dict(x) for x in prep.scheduled_actions),
        health=HealthGate.of(p, prep.require("properties")),
        weighted=True,
    )
    ctx.deployment.new_state = state.to_json()
    return Done()


@action("complete_preparation", reads=True)
def complete_preparation(ctx: Context) -> Outcome:
    d = ctx.deployment
    instructions = ctx.prep.require("application").get("instructions")
    params = ctx.params()
    steps = strategy_of(params.strategy).deployment_steps(
        params,
        ctx.previous,
        instructions=instructions if isinstance(instructions, str) and instructions else None,
    )
    # The plan grows by the deployment phase (once: a re-run replaces what it added).
    del d.plan[len(planner.PREPARATION) :]
    d.plan.extend(steps)
    if d.phase == PREPARE:  # idempotent: a second run finds it prepared
        lifecycle.move(d, "prepared")
        d.phase = DEPLOY
    return Done(f"preparation complete; {len(steps)} deployment actions planned")
