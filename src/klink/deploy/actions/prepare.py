"""Preparation actions: reads only. A failure marks the deployment ``invalid``.

They read the request, the app and env metadata, the config files at one commit, the image,
the network, and produce everything the deployment phase needs as facts: names, tags,
user-data, policies, alarms, scheduled actions and finally the new group state and the plan.
"""

from __future__ import annotations

import re
from typing import Any

from klink import names
from klink.config.params import application_properties_problems, launch_commands
from klink.deploy import plan as planner
from klink.deploy import userdata
from klink.deploy.actions.registry import action
from klink.deploy.context import Context
from klink.deploy.model import DEPLOY, RUNNING, Done, Failed, GroupState, LaunchState, Outcome
from klink.deploy.params import read_params, validate_with_config
from klink.errors import InvalidInput, KlinkError, NotFound
from klink.providers import base

_HEX40 = re.compile(r"^[0-9a-f]{40}$")
CONFIG_FILES = ("application-properties.json", "deployment-params.json", "launch-data.json")


@action("validate_request")
def validate_request(ctx: Context) -> Outcome:
    d = ctx.deployment
    names.check_name(d.app, "app")
    names.check_name(d.env, "env")
    if not d.image or not isinstance(d.image, str):
        return Failed("an image is required")
    if not d.message.strip():
        return Failed("a message is required")
    return Done(f"deploying {d.image} to {d.app}/{d.env}: {d.message}")


@action("read_application")
def read_application(ctx: Context) -> Outcome:
    try:
        record = ctx.services.metadata.application(ctx.deployment.app)
    except NotFound:
        return Failed(f"application {ctx.deployment.app!r} does not exist")
    ctx.facts["application"] = dict(record.get("metadata") or {})
    return Done()


@action("check_not_blocked")
def check_not_blocked(ctx: Context) -> Outcome:
    blocked = ctx.facts["application"].get("blocked")
    if blocked:
        if isinstance(blocked, dict):
            reason = f"{blocked.get('reason', '')} (by {blocked.get('user', '?')})"
        else:
            reason = str(blocked)
        return Failed(f"application {ctx.deployment.app!r} is blocked from deploying: {reason}")
    return Done()


@action("check_contact")
def check_contact(ctx: Context) -> Outcome:
    contact = ctx.facts["application"].get("contact")
    if not isinstance(contact, str) or not contact.strip():
        return Failed(f"application {ctx.deployment.app!r} has no contact; set one to deploy")
    return Done()


@action("read_environment")
def read_environment(ctx: Context) -> Outcome:
    try:
        record = ctx.services.metadata.environment(ctx.deployment.env)
    except NotFound:
        return Failed(f"environment {ctx.deployment.env!r} does not exist")
    ctx.facts["environment"] = dict(record.get("metadata") or {})
    return Done()


@action("connect_provider")
def connect_provider(ctx: Context) -> Outcome:
    provider = ctx.provider()
    ctx.facts["provider"] = provider.name
    ctx.facts["http_probes"] = bool(provider.http_probes)
    return Done(f"provider {provider.name}")


@action("resolve_config_commit")
def resolve_config_commit(ctx: Context) -> Outcome:
    d = ctx.deployment
    commit, _ = ctx.services.config.file(d.app, d.env, CONFIG_FILES[0], d.commit or "HEAD")
    d.config_commit = commit
    return Done(f"config commit {commit}")


@action("verify_config_commit")
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


@action("read_application_properties")
def read_application_properties(ctx: Context) -> Outcome:
    data = _read(ctx, "application-properties.json")
    problems = application_properties_problems(data)
    if problems:
        return Failed("application-properties.json: " + "; ".join(map(str, problems)))
    ctx.facts["properties"] = data
    return Done()


@action("read_deployment_params")
def read_deployment_params(ctx: Context) -> Outcome:
    ctx.facts["params_raw"] = _read(ctx, "deployment-params.json")
    return Done()


@action("read_launch_data")
def read_launch_data(ctx: Context) -> Outcome:
    ctx.facts["launch_data"] = launch_commands(_read(ctx, "launch-data.json"))
    return Done()


@action("validate_deployment_params")
def validate_deployment_params(ctx: Context) -> Outcome:
    data = validate_with_config(ctx.facts["params_raw"], ctx.facts.get("provider", "local"))
    ctx.facts["params"] = data
    read_params(data)
    return Done()


@action("validate_capacity")
def validate_capacity(ctx: Context) -> Outcome:
    params = ctx.params()
    if params.max_size > 1000:
        return Failed(f"max {params.max_size} is more than 1000 instances")
    return Done(f"capacity {params.min_size}/{params.desired_capacity}/{params.max_size}")


@action("describe_image")
def describe_image(ctx: Context) -> Outcome:
    try:
        image = ctx.provider().describe_image(ctx.deployment.image or "")
    except NotFound:
        return Failed(f"image {ctx.deployment.image!r} does not exist")
    if image.state != "available":
        return Failed(f"image {image.id} is {image.state}, not available")
    ctx.facts["image"] = {"id": image.id, "name": image.name, "tags": dict(image.tags)}
    return Done(f"image {image.id} ({image.app} {image.version})")


@action("check_image_app")
def check_image_app(ctx: Context) -> Outcome:
    app = ctx.facts["image"]["tags"].get(base.TAG_APP)
    if app != ctx.deployment.app:
        return Failed(
            f"image {ctx.deployment.image} belongs to {app!r}, not {ctx.deployment.app!r}"
        )
    return Done()


@action("check_image_embargo")
def check_image_embargo(ctx: Context) -> Outcome:
    raw = ctx.facts["image"]["tags"].get(base.TAG_EMBARGO, "")
    embargo = {part.strip() for part in raw.split(",") if part.strip()}
    if ctx.deployment.env in embargo:
        return Failed(f"image {ctx.deployment.image} is embargoed from {ctx.deployment.env}")
    return Done()


@action("check_instance_type")
def check_instance_type(ctx: Context) -> Outcome:
    instance_type = ctx.params().instance_type
    if ctx.facts.get("provider") == "aws" and instance_type == "local":
        return Failed("instanceType is required on aws")
    arch = ctx.facts["image"]["tags"].get("klink:architecture")
    family = instance_type.split(".", 1)[0]
    if arch == "arm64" and not family.endswith("g") and "g" not in family[2:]:
        return Failed(f"image {ctx.deployment.image} is arm64; {instance_type} is not")
    if arch == "x86_64" and re.fullmatch(r"[a-z]+\d+g[a-z]*", family):
        return Failed(f"image {ctx.deployment.image} is x86_64; {instance_type} is arm64")
    return Done()


@action("resolve_security_groups")
def resolve_security_groups(ctx: Context) -> Outcome:
    wanted = ctx.params().security_groups
    ids = ctx.provider().security_group_ids(list(wanted)) if wanted else {}
    ctx.facts["security_group_ids"] = [ids[n] for n in wanted]
    return Done()


@action("resolve_subnets")
def resolve_subnets(ctx: Context) -> Outcome:
    purpose = ctx.params().subnet_purpose
    subnets = ctx.provider().subnets(purpose)
    if purpose and not subnets:
        return Failed(f"no subnet is tagged for purpose {purpose!r}")
    ctx.facts["subnets"] = [s.id for s in subnets]
    return Done()


@action("resolve_target_groups")
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
    ctx.facts["target_groups"] = kept
    return Done(f"target groups: {', '.join(kept) or 'none'}")


@action("create_names")
def create_names(ctx: Context) -> Outcome:
    d = ctx.deployment
    kept = GroupState.from_json(ctx.facts.get("kept_group"))
    if kept is not None and kept.launch is not None:
        ctx.facts["names"] = {"group": kept.name, "launch_template": kept.launch.name}
        return Done(f"re-enabling kept group {kept.name}")
    pattern = names.group_pattern(d.app, d.env).pattern
    taken = [g.name for g in ctx.provider().list_groups(pattern)]
    previous = ctx.previous
    group = names.next_group_name(d.app, d.env, previous.name if previous else None, taken)
    ctx.facts["names"] = {
        "group": group,
        "launch_template": names.launch_template_name(group, ctx.now()),
    }
    return Done(f"new group {group}")


@action("create_tags")
def create_tags(ctx: Context) -> Outcome:
    d = ctx.deployment
    image_tags = ctx.facts["image"]["tags"]
    ctx.facts["tags"] = {
        "Name": ctx.facts["names"]["group"],
        base.TAG_APP: d.app,
        base.TAG_ENV: d.env,
        base.TAG_VERSION: image_tags.get(base.TAG_VERSION, ""),
        base.TAG_CONFIG_COMMIT: d.config_commit or "",
        base.TAG_DEPLOYMENT: d.id,
        base.TAG_DEPLOYED_BY: d.user,
        base.TAG_DEPLOYED_AT: ctx.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        base.TAG_MANAGED_BY: "klink",
    }
    return Done()


@action("generate_user_data")
def generate_user_data(ctx: Context) -> Outcome:
    d = ctx.deployment
    env_meta = ctx.facts.get("environment", {})
    ctx.facts["user_data"] = userdata.render(
        app=d.app,
        env=d.env,
        group=ctx.facts["names"]["group"],
        version=ctx.facts["image"]["tags"].get(base.TAG_VERSION, ""),
        config_commit=d.config_commit or "",
        region=str(env_meta.get("region") or ctx.facts.get("provider", "")),
        properties=ctx.facts["properties"],
        launch_data=ctx.facts["launch_data"],
    )
    return Done()


def _carry(ctx: Context, key: str, from_params: tuple[dict[str, Any], ...]) -> list[Any]:
    if from_params:
        return [dict(item) for item in from_params]
    previous = ctx.previous
    return [dict(item) for item in getattr(previous, key, ())] if previous else []


@action("generate_policies")
def generate_policies(ctx: Context) -> Outcome:
    ctx.facts["policies"] = _carry(ctx, "policies", ctx.params().policies)
    return Done(f"{len(ctx.facts['policies'])} scaling policies")


@action("generate_alarms")
def generate_alarms(ctx: Context) -> Outcome:
    ctx.facts["alarms"] = _carry(ctx, "alarms", ctx.params().alarms)
    policy_names = {p.get("name") for p in ctx.facts["policies"]}
    for alarm in ctx.facts["alarms"]:
        missing = [p for p in alarm.get("policies", []) if p not in policy_names]
        if missing:
            return Failed(f"alarm {alarm.get('name')!r} names unknown policy {missing[0]!r}")
    return Done(f"{len(ctx.facts['alarms'])} alarms")


@action("generate_scheduled_actions")
def generate_scheduled_actions(ctx: Context) -> Outcome:
    ctx.facts["scheduled_actions"] = _carry(
        ctx, "scheduled_actions", ctx.params().scheduled_actions
    )
    return Done(f"{len(ctx.facts['scheduled_actions'])} scheduled actions")


@action("build_new_state")
def build_new_state(ctx: Context) -> Outcome:
    kept = ctx.facts.get("kept_group")
    if kept:
        ctx.deployment.new_state = {
            **kept,
            "policies": ctx.facts["policies"],
            "alarms": ctx.facts["alarms"],
            "scheduled_actions": ctx.facts["scheduled_actions"],
        }
        return Done()
    p = ctx.params()
    facts = ctx.facts
    volumes = tuple(
        {
            "device_name": str(v["device"]),
            "size_gb": int(v["sizeGb"]),
            "volume_type": str(v.get("type", "gp3")),
            "delete_on_termination": bool(v.get("deleteOnTermination", True)),
        }
        for v in p.volumes
    )
    state = GroupState(
        name=facts["names"]["group"],
        launch=LaunchState(
            name=facts["names"]["launch_template"],
            image_id=facts["image"]["id"],
            instance_type=p.instance_type,
            user_data=facts["user_data"],
            security_group_ids=tuple(facts["security_group_ids"]),
            instance_profile=(facts.get("params") or {}).get("instanceProfile"),
            key_name=(facts.get("params") or {}).get("keyName"),
            block_devices=volumes,
            tags=dict(facts["tags"]),
        ),
        min_size=p.min_size,
        max_size=p.max_size,
        desired_capacity=p.desired_capacity,
        image_id=facts["image"]["id"],
        version=facts["tags"].get(base.TAG_VERSION),
        config_commit=ctx.deployment.config_commit,
        subnets=tuple(facts["subnets"]),
        default_cooldown=p.default_cooldown,
        health_check_type=p.health_check_type,
        health_check_grace_period=p.health_check_grace_period,
        termination_policies=p.termination_policies,
        target_groups=tuple(facts["target_groups"]),
        tags=dict(facts["tags"]),
        policies=tuple(facts["policies"]),
        alarms=tuple(facts["alarms"]),
        scheduled_actions=tuple(facts["scheduled_actions"]),
    )
    ctx.deployment.new_state = state.to_json()
    return Done()


@action("complete_preparation")
def complete_preparation(ctx: Context) -> Outcome:
    d = ctx.deployment
    instructions = ctx.facts["application"].get("instructions")
    steps = planner.deployment_steps(
        ctx.params(),
        ctx.previous,
        instructions=instructions if isinstance(instructions, str) and instructions else None,
    )
    # The plan grows by the deployment phase (once: a re-run replaces what it added).
    del d.plan[len(planner.PREPARATION) :]
    d.plan.extend(steps)
    d.phase = DEPLOY
    d.status = RUNNING
    return Done(f"preparation complete; {len(steps)} deployment actions planned")


def prepare_error(exc: KlinkError) -> Failed:
    return Failed(exc.message)
