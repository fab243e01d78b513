"""From a schema-valid definition to the desired ``State``: one method per kind.

Checks what a schema cannot: names belong to the app (``{app}`` or ``{app}-…``), references
inside the file resolve (listeners to target groups, rules and load balancers to security
groups) and, when the environment's ``infra`` values are given, references to them resolve too
(named rule sets, subnet sets, shared groups, named policies). Problems are collected, never
raised, so that every one is reported at once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from klink.infra.resources import State, TargetGroupDef, managed_tags
from klink.providers.infra import (
    ALL_EGRESS,
    ListenerSpec,
    LoadBalancerSpec,
    RoleSpec,
    Rule,
    SecurityGroupSpec,
)


@dataclass(frozen=True)
class Problem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def owned(app: str, name: str) -> bool:
    return name == app or name.startswith(f"{app}-")


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        return False
    return True


def _ports(protocol: str, raw: Any) -> tuple[int, int] | None:
    if protocol == "-1":
        return 0, 65535
    if raw is None:
        return (-1, -1) if protocol == "icmp" else None
    if isinstance(raw, int):
        return raw, raw
    low, _, high = str(raw).partition("-")
    first, last = int(low), int(high or low)
    if not 0 <= first <= last <= 65535:
        return None
    return first, last


class Resolver:
    """Resolves one definition; ``env_infra`` None means "push time": the environment's values
    are unknown, so references to them are not checked."""

    def __init__(
        self,
        data: Mapping[str, Any],
        app: str,
        env: str,
        env_infra: Mapping[str, Any] | None,
        problems: list[Problem],
        *,
        check_names: bool,
    ) -> None:
        self.app, self.env = app, env
        self.env_known = env_infra is not None
        self.infra: Mapping[str, Any] = env_infra or {}
        self.problems = problems
        self.check_names = check_names
        self.tags = managed_tags(app, env)
        self.vpc = self.infra.get("vpc")
        self.groups_raw: Mapping[str, Any] = data.get("securityGroups") or {}
        self.targets_raw: Mapping[str, Any] = data.get("targetGroups") or {}
        self.balancers_raw: Mapping[str, Any] = data.get("loadBalancers") or {}
        self.role_raw: Mapping[str, Any] | None = data.get("role")

    def problem(self, field: str, message: str) -> None:
        self.problems.append(Problem(field, message))

    def state(self) -> State:
        if self.check_names:
            for section, names in (
                ("securityGroups", self.groups_raw),
                ("targetGroups", self.targets_raw),
                ("loadBalancers", self.balancers_raw),
            ):
                for name in names:
                    if not owned(self.app, name):
                        self.problem(
                            f"{section}.{name}",
                            f"name must be {self.app!r} or start with {self.app + '-'!r} "
                            "(resources belong to one app)",
                        )
        load_balancers, listeners = self.load_balancers()
        return State(
            security_groups=self.security_groups(),
            target_groups=self.target_groups(),
            load_balancers=load_balancers,
            listeners=listeners,
            roles=self.roles(),
        )

    # Security groups ----------------------------------------------------------------------
    def check_group(self, name: str, where: str) -> None:
        if self.env_known:
            if name not in self.groups_raw and name not in (self.infra.get("securityGroups") or []):
                self.problem(
                    where,
                    f"security group {name!r} is neither defined in this file nor shared by the "
                    "environment (infra.securityGroups)",
                )
        elif name not in self.groups_raw and self.check_names and owned(self.app, name):
            self.problem(where, f"security group {name!r} is not defined in this file")

    def expand(self, raw: Mapping[str, Any], peers_key: str, where: str) -> list[Rule]:
        """One rule per source: ``{protocol, ports, from|to: [cidr or group, …]}``."""
        protocol = str(raw.get("protocol", "tcp"))
        protocol = "-1" if protocol == "all" else protocol
        ports = _ports(protocol, raw.get("ports"))
        if ports is None:
            self.problem(
                f"{where}.ports", "ports (N or FROM-TO within 0-65535) are needed for tcp and udp"
            )
            return []
        return [
            Rule(protocol, ports[0], ports[1], cidr=peer)
            if _is_cidr(peer)
            else Rule(protocol, ports[0], ports[1], group=peer)
            for peer in raw[peers_key]
        ]

    def rules(
        self, raw_rules: Sequence[Mapping[str, Any]], peers_key: str, where: str
    ) -> set[Rule]:
        result: set[Rule] = set()
        for i, raw in enumerate(raw_rules):
            at = f"{where}.{i}"
            if "use" not in raw:
                result.update(self.expand(raw, peers_key, at))
                continue
            named = (self.infra.get("ingressRules") or {}).get(raw["use"])
            if named is None:
                if self.env_known:
                    self.problem(
                        f"{at}.use",
                        f"no rule set {raw['use']!r} in the environment's infra.ingressRules",
                    )
                continue
            for j, inner in enumerate(named):
                result.update(self.expand(inner, "from", f"{at}.use[{j}]"))
        for rule in result:
            if rule.group is not None:
                self.check_group(rule.group, where)
        return result

    def security_groups(self) -> dict[str, SecurityGroupSpec]:
        out = {}
        for name, raw in self.groups_raw.items():
            where = f"securityGroups.{name}"
            egress = raw.get("egress")
            out[name] = SecurityGroupSpec(
                name=name,
                description=raw.get("description") or f"{self.app} {self.env} {name} (klink)",
                vpc_id=self.vpc,
                ingress=frozenset(self.rules(raw.get("ingress") or [], "from", f"{where}.ingress")),
                egress=ALL_EGRESS
                if egress is None
                else frozenset(self.rules(egress, "to", f"{where}.egress")),
                tags=self.tags,
            )
        return out

    # Target groups, load balancers, listeners ---------------------------------------------
    def target_groups(self) -> dict[str, TargetGroupDef]:
        out = {}
        for name, raw in self.targets_raw.items():
            health = raw.get("healthCheck") or {}
            out[name] = TargetGroupDef(
                name=name,
                port=raw["port"],
                protocol=raw.get("protocol", "HTTP"),
                health_check_path=health.get("path", "/healthcheck"),
                health_check_interval_seconds=health.get("intervalSeconds", 10),
                healthy_threshold=health.get("healthyThreshold", 2),
                unhealthy_threshold=health.get("unhealthyThreshold", 2),
                deregistration_delay_seconds=raw.get("deregistrationDelaySeconds", 30),
                frontend_port=raw.get("frontendPort"),
                vpc_id=self.vpc,
                tags=self.tags,
            )
        return out

    def subnets(self, raw: str | Sequence[str], where: str) -> frozenset[str]:
        if not isinstance(raw, str):
            return frozenset(raw)
        sets = self.infra.get("subnets") or {}
        if raw not in sets and self.env_known:
            self.problem(where, f"no subnet set {raw!r} in the environment's infra.subnets")
        return frozenset(sets.get(raw, ()))

    def load_balancers(self) -> tuple[dict[str, LoadBalancerSpec], dict[str, ListenerSpec]]:
        balancers: dict[str, LoadBalancerSpec] = {}
        listeners: dict[str, ListenerSpec] = {}
        for name, raw in self.balancers_raw.items():
            where = f"loadBalancers.{name}"
            groups = raw.get("securityGroups") or []
            for i, group in enumerate(groups):
                self.check_group(group, f"{where}.securityGroups.{i}")
            balancers[name] = LoadBalancerSpec(
                name=name,
                scheme=raw.get("scheme", "internet-facing"),
                subnets=self.subnets(raw["subnets"], f"{where}.subnets"),
                security_groups=frozenset(groups),
                tags=self.tags,
            )
            for i, lraw in enumerate(raw.get("listeners") or []):
                at = f"{where}.listeners.{i}"
                listener = ListenerSpec(
                    load_balancer=name,
                    port=lraw["port"],
                    protocol=lraw.get("protocol", "HTTP"),
                    target_group=lraw["targetGroup"],
                    certificate=self.certificate(lraw, at),
                    tags=self.tags,
                )
                if listener.target_group not in self.targets_raw:
                    self.problem(
                        f"{where}.listeners.{i}.targetGroup",
                        f"target group {listener.target_group!r} is not defined in this file",
                    )
                if listener.name in listeners:
                    self.problem(
                        f"{where}.listeners.{i}.port", f"port {listener.port} is used twice"
                    )
                listeners[listener.name] = listener
        return balancers, listeners

    def certificate(self, raw: Mapping[str, Any], where: str) -> str | None:
        """HTTPS needs a certificate (an ARN or a name in ``infra.certificates``); HTTP has none."""
        value = raw.get("certificate")
        if raw.get("protocol", "HTTP") != "HTTPS":
            if value is not None:
                self.problem(f"{where}.certificate", "only HTTPS listeners take a certificate")
            return None
        if value is None:
            self.problem(f"{where}.certificate", "an HTTPS listener needs a certificate")
            return None
        if str(value).startswith("arn:"):
            return str(value)
        named = (self.infra.get("certificates") or {}).get(value)
        if named is None and self.env_known:
            self.problem(
                f"{where}.certificate",
                f"no certificate {value!r} in the environment's infra.certificates",
            )
        return str(named) if named is not None else None

    # IAM ----------------------------------------------------------------------------------
    def roles(self) -> dict[str, RoleSpec]:
        raw = self.role_raw
        if raw is None:
            return {}
        name = raw.get("name") or f"{self.app}-{self.env}"
        if self.check_names and not owned(self.app, name):
            self.problem("role.name", f"name must be {self.app!r} or start with {self.app + '-'!r}")
        policies: dict[str, Mapping[str, Any]] = {}
        library = self.infra.get("policies") or {}
        for pname, value in (raw.get("policies") or {}).items():
            if not isinstance(value, str):
                policies[pname] = value
            elif value in library:
                policies[pname] = library[value]
            elif self.env_known:
                self.problem(
                    f"role.policies.{pname}",
                    f"no policy {value!r} in the environment's infra.policies",
                )
        for pname, document in (self.infra.get("defaultPolicies") or {}).items():
            if pname in policies:
                self.problem(
                    f"role.policies.{pname}",
                    f"{pname!r} is one of the environment's default policies, appended to every "
                    "role; choose another name",
                )
            policies[pname] = document
        return {name: RoleSpec(name=name, policies=policies, tags=self.tags)}
