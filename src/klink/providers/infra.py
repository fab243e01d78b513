"""Infrastructure as the cloud boundary speaks it: security groups, load balancers, listeners
and IAM roles, for desired and live state alike.

These are the providers' vocabulary, not a service's: the infrastructure service
(``klink.infra``) builds them from a definition and hands them down, and the AWS boundary
(``providers/aws/infra/``) creates, reads and updates them, so the boundary depends on nothing
above it. References between resources are by Klink name (a security group rule names another
group, a listener names its target group); only the boundary turns names into cloud ids.
Fields marked *live only* are filled when read back from the cloud. Pure data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
