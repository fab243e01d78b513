"""Live state, read through the provider.

Target groups come from the generic provider interface (``list_target_groups``) on every
provider; security groups, load balancers, listeners and IAM come from the AWS boundary
(``providers/aws/infra/``) and are *not applicable* elsewhere (reported in the plan, never
silently ignored). What is read: resources tagged as this app+env's, plus resources carrying a
name the definition wants (untagged ones are adopted by tagging; ones another app+env manages
are a conflict). ``prepare`` fills what the definition leaves to the cloud (the VPC), so that
desired and live compare field by field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from klink.infra.plan import Live
from klink.infra.resources import (
    AWS_ONLY_KINDS,
    LOAD_BALANCER,
    ROLE,
    SECURITY_GROUP,
    TARGET_GROUP,
    Definition,
    State,
    TargetGroupDef,
)
from klink.providers.base import TAG_APP, TAG_ENV, TAG_MANAGED_BY, TargetGroup, TargetGroupSpec

if TYPE_CHECKING:
    from klink.providers.aws.infra import AwsInfra
    from klink.providers.base import Provider


@dataclass
class Cloud:
    """The provider of one environment and, on AWS, its infrastructure boundary."""

    provider: Provider
    aws: AwsInfra | None = None

    @property
    def frontend_ports(self) -> bool:
        """Whether target groups have their own frontend port (local: an HAProxy frontend;
        on AWS the listener is the frontend)."""
        return self.aws is None


def cloud_for(provider: Provider, env_metadata: Mapping[str, Any]) -> Cloud:
    if provider.name != "aws":
        return Cloud(provider)
    from klink.providers.aws.infra import AwsInfra
    from klink.providers.aws.session import AwsConfig, AwsSession

    session = getattr(provider, "session", None)
    if not isinstance(session, AwsSession):
        session = AwsSession(AwsConfig.from_metadata(env_metadata))
    infra = env_metadata.get("infra") or {}
    return Cloud(provider, AwsInfra(session, vpc_id=infra.get("vpc")))


def prepare(definition: Definition, cloud: Cloud) -> Definition:
    """The definition with the environment's VPC filled in and, on AWS, no frontend ports."""
    desired = definition.desired
    if cloud.aws is None:
        return definition
    vpc = cloud.aws.vpc_id()
    return replace(
        definition,
        desired=replace(
            desired,
            security_groups={
                n: replace(g, vpc_id=g.vpc_id or vpc) for n, g in desired.security_groups.items()
            },
            target_groups={
                n: replace(t, vpc_id=t.vpc_id or vpc, frontend_port=None)
                for n, t in desired.target_groups.items()
            },
        ),
    )


def target_group_def(tg: TargetGroup, *, frontend_ports: bool) -> TargetGroupDef:
    return TargetGroupDef(
        name=tg.name,
        port=tg.port,
        protocol=tg.protocol,
        health_check_path=tg.health_check_path,
        health_check_interval_seconds=tg.health_check_interval_seconds,
        healthy_threshold=tg.healthy_threshold,
        unhealthy_threshold=tg.unhealthy_threshold,
        deregistration_delay_seconds=tg.deregistration_delay_seconds,
        frontend_port=tg.frontend_port if frontend_ports else None,
        vpc_id=tg.vpc_id,
        tags=dict(tg.tags),
        id=tg.id,
    )


def target_group_spec(tg: TargetGroupDef) -> TargetGroupSpec:
    return TargetGroupSpec(
        name=tg.name,
        port=tg.port,
        protocol=tg.protocol,
        health_check_path=tg.health_check_path,
        health_check_interval_seconds=tg.health_check_interval_seconds,
        healthy_threshold=tg.healthy_threshold,
        unhealthy_threshold=tg.unhealthy_threshold,
        deregistration_delay_seconds=tg.deregistration_delay_seconds,
        vpc_id=tg.vpc_id,
        frontend_port=tg.frontend_port,
        tags=dict(tg.tags),
    )


def _target_groups(
    definition: Definition, cloud: Cloud
) -> tuple[dict[str, TargetGroupDef], dict[tuple[str, str], str]]:
    wanted = set(definition.desired.target_groups)
    mine: dict[str, TargetGroupDef] = {}
    foreign: dict[tuple[str, str], str] = {}
    for tg in cloud.provider.list_target_groups():
        tags = tg.tags
        managed = tags.get(TAG_MANAGED_BY) == "infra"
        ours = tags.get(TAG_APP) == definition.app and tags.get(TAG_ENV) == definition.env
        if managed and ours:
            mine[tg.name] = target_group_def(tg, frontend_ports=cloud.frontend_ports)
        elif tg.name in wanted:
            if managed:
                owner = f"app {tags.get(TAG_APP, '?')} in {tags.get(TAG_ENV, '?')}"
                foreign[(TARGET_GROUP, tg.name)] = owner
            else:
                mine[tg.name] = target_group_def(tg, frontend_ports=cloud.frontend_ports)
    return mine, foreign


def read_live(definition: Definition, cloud: Cloud) -> Live:
    """Live state for ``definition`` (call ``prepare`` on it first)."""
    app, env, desired = definition.app, definition.env, definition.desired
    target_groups, foreign = _target_groups(definition, cloud)
    if cloud.aws is None:
        return Live(
            State(target_groups=target_groups),
            foreign=foreign,
            unsupported_kinds=AWS_ONLY_KINDS,
        )
    aws = cloud.aws
    groups = aws.security_groups(app, env, desired.security_groups)
    balancers = aws.load_balancers(app, env, desired.load_balancers)
    roles = aws.roles(app, env, desired.roles)
    for kind, found in ((SECURITY_GROUP, groups), (LOAD_BALANCER, balancers), (ROLE, roles)):
        foreign.update({(kind, name): owner for name, owner in found.foreign.items()})
    # Listeners are read from this app's load balancers only.
    listeners = aws.listeners(balancers.mine.values())
    return Live(
        State(
            security_groups=groups.mine,
            target_groups=target_groups,
            load_balancers=balancers.mine,
            listeners=listeners,
            roles=roles.mine,
        ),
        foreign=foreign,
        existing_groups=frozenset(aws.group_ids()),
    )
