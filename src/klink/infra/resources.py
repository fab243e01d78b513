"""The vocabulary of infrastructure: one frozen dataclass per kind, for desired and live state.

The same types describe what a definition wants and what the provider reads back, so the plan
builder compares like with like. References between resources are by Klink name (a security
group rule names another group, a listener names its target group); only the provider boundary
turns names into cloud ids. Pure data: this module imports nothing but the standard library, so
the AWS boundary (``providers/aws/infra.py``) can speak it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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

EC2_TRUST_POLICY: Mapping[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@dataclass(frozen=True, order=True)
class Rule:
    """One permission: ``protocol`` (tcp, udp, icmp or -1 for all) on ports
    ``from_port``..``to_port`` from (ingress) or to (egress) one CIDR or one security group
    named by its Klink name. A rule set is a frozenset of these, one source each, so that
    adding one CIDR to a rule is a one-line difference."""

    protocol: str
    from_port: int
    to_port: int
    cidr: str | None = None
    group: str | None = None

    def describe(self) -> str:
        ports = (
            "all ports"
            if self.protocol == "-1" or (self.from_port, self.to_port) == (0, 65535)
            else str(self.from_port)
            if self.from_port == self.to_port
            else f"{self.from_port}-{self.to_port}"
        )
        proto = "all traffic" if self.protocol == "-1" else f"{self.protocol} {ports}"
        peer = self.cidr if self.cidr is not None else f"group {self.group}"
        return f"{proto} {peer}"


ALL_EGRESS = frozenset({Rule("-1", 0, 65535, cidr="0.0.0.0/0")})


@dataclass(frozen=True)
class SecurityGroupSpec:
    name: str
    description: str
    vpc_id: str | None
    ingress: frozenset[Rule] = frozenset()
    egress: frozenset[Rule] = ALL_EGRESS
    tags: Mapping[str, str] = field(default_factory=dict)
    id: str | None = None  # live only


@dataclass(frozen=True)
class LoadBalancerSpec:
    name: str
    scheme: str  # internet-facing | internal
    subnets: frozenset[str]
    security_groups: frozenset[str]  # Klink names
    tags: Mapping[str, str] = field(default_factory=dict)
    id: str | None = None  # the ARN, live only
    dns_name: str | None = None  # live only


@dataclass(frozen=True)
class ListenerSpec:
    load_balancer: str
    port: int
    protocol: str
    target_group: str  # forwards to this target group (Klink name)
    certificate: str | None = None  # HTTPS: the certificate's ARN (ACM or IAM)
    # Set at creation; not compared (a listener belongs to its load balancer, which is).
    tags: Mapping[str, str] = field(default_factory=dict, compare=False)
    id: str | None = None  # the ARN, live only

    @property
    def name(self) -> str:
        return f"{self.load_balancer}:{self.port}"


@dataclass(frozen=True)
class RoleSpec:
    """An IAM role trusted by EC2, its inline policies (name → document) and an instance
    profile of the same name holding it."""

    name: str
    policies: Mapping[str, Mapping[str, Any]]
    trust_policy: Mapping[str, Any] = field(default_factory=lambda: EC2_TRUST_POLICY)
    tags: Mapping[str, str] = field(default_factory=dict)
    # Live only: whether the instance profile of the same name exists and holds the role.
    instance_profile: bool = True
    id: str | None = None  # the ARN, live only


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
