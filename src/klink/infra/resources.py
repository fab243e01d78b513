"""The infrastructure service's model: the kinds, a definition and a state (resources by kind
and name), for desired and live state alike.

The same types describe what a definition wants and what the provider reads back, so the plan
builder compares like with like. Security groups, load balancers, listeners and roles are the
cloud boundary's own types (``klink.providers.infra``): this service builds them and hands them
down, the boundary depends on no service. Target groups go through the generic provider
interface, so ``TargetGroupDef`` stays here and is converted at the boundary. Pure data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from klink.providers.infra import ListenerSpec, LoadBalancerSpec, RoleSpec, SecurityGroupSpec

SECURITY_GROUP = "security_group"
TARGET_GROUP = "target_group"
LOAD_BALANCER = "load_balancer"
LISTENER = "listener"
ROLE = "role"

# Apply order of creates and updates; deletes run in the reverse order (a listener goes before
# its load balancer, a load balancer before the groups it uses).
KIND_ORDER = (SECURITY_GROUP, TARGET_GROUP, LOAD_BALANCER, LISTENER, ROLE)
AWS_ONLY_KINDS = frozenset({SECURITY_GROUP, LOAD_BALANCER, LISTENER, ROLE})

KIND_TITLES = {
    SECURITY_GROUP: "security group",
    TARGET_GROUP: "target group",
    LOAD_BALANCER: "load balancer",
    LISTENER: "listener",
    ROLE: "IAM role",
}

MANAGED_BY = "infra"  # value of the klink:managed-by tag on everything this service creates


@dataclass(frozen=True)
class TargetGroupDef:
    """A target group as infrastructure sees it; converted to ``providers.base.TargetGroupSpec``
    at the provider boundary."""

    name: str
    port: int
    protocol: str = "HTTP"
    health_check_path: str = "/healthcheck"
    health_check_interval_seconds: int = 5
    healthy_threshold: int = 2
    unhealthy_threshold: int = 2
    deregistration_delay_seconds: int = 30
    frontend_port: int | None = None
    vpc_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    id: str | None = None  # live only


Resource = SecurityGroupSpec | TargetGroupDef | LoadBalancerSpec | ListenerSpec | RoleSpec


def kind_of(resource: Resource) -> str:
    if isinstance(resource, SecurityGroupSpec):
        return SECURITY_GROUP
    if isinstance(resource, TargetGroupDef):
        return TARGET_GROUP
    if isinstance(resource, LoadBalancerSpec):
        return LOAD_BALANCER
    if isinstance(resource, ListenerSpec):
        return LISTENER
    return ROLE


@dataclass(frozen=True)
class State:
    """A set of resources by kind and name: a definition's desired state, or what is live."""

    security_groups: Mapping[str, SecurityGroupSpec] = field(default_factory=dict)
    target_groups: Mapping[str, TargetGroupDef] = field(default_factory=dict)
    load_balancers: Mapping[str, LoadBalancerSpec] = field(default_factory=dict)
    listeners: Mapping[str, ListenerSpec] = field(default_factory=dict)
    roles: Mapping[str, RoleSpec] = field(default_factory=dict)

    def of_kind(self, kind: str) -> Mapping[str, Resource]:
        table: dict[str, Mapping[str, Resource]] = {
            SECURITY_GROUP: self.security_groups,
            TARGET_GROUP: self.target_groups,
            LOAD_BALANCER: self.load_balancers,
            LISTENER: self.listeners,
            ROLE: self.roles,
        }
        return table[kind]


@dataclass(frozen=True)
class Definition:
    """One app+env's parsed ``infrastructure.yaml`` with environment values resolved."""

    app: str
    env: str
    desired: State
    prune: bool = False


def managed_tags(app: str, env: str) -> dict[str, str]:
    return {"klink:managed-by": MANAGED_BY, "klink:app": app, "klink:env": env}
