"""``infrastructure.yaml``: safe-loaded, validated, resolved into a ``Definition``.

Two steps. ``definition_problems(text)`` needs nothing but the file: YAML (duplicate keys are an
error, not a silent override), the JSON Schema of ``schema.py``, and the rules a schema cannot
say: every name belongs to the app (is the app's name or starts with ``{app}-``, so two apps can
never fight over one load balancer), references inside the file resolve. It is what the config
service runs at push time. ``parse_definition(text, app, env, env_infra)`` then resolves the
names the file takes from the environment record's ``infra`` metadata (shared security groups,
named ingress rule sets, subnet sets, named and default role policies, the VPC) and returns the
desired state. Every problem names its field as a dotted path; all are reported at once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from klink.errors import InvalidInput
from klink.infra import schema
from klink.infra.resources import (
    ALL_EGRESS,
    Definition,
    ListenerSpec,
    LoadBalancerSpec,
    RoleSpec,
    Rule,
    SecurityGroupSpec,
    State,
    TargetGroupDef,
    managed_tags,
)

FILE_NAME = "infrastructure.yaml"


@dataclass(frozen=True)
class Problem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (plain YAML keeps the last silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return dict(loader.construct_mapping(node))


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def load_yaml(text: str | bytes) -> Any:
    """Safe-load YAML; InvalidInput naming the file on a syntax error."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{FILE_NAME} is not valid YAML: {exc}", field=FILE_NAME) from None


def _path(parts: Sequence[Any]) -> str:
    return ".".join(str(p) for p in parts)


def _schema_problems(data: Any, spec: Mapping[str, Any], prefix: str = "") -> list[Problem]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(spec)
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        where = _path([*([prefix] if prefix else []), *error.path])
        message = error.message
        if error.validator == "oneOf" and error.context:
            message = "; or ".join(sorted({c.message for c in error.context}))
        problems.append(Problem(where or (prefix or FILE_NAME), message))
    return problems


def _owned(app: str, name: str) -> bool:
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


def _expand_rule(
    raw: Mapping[str, Any], peers_key: str, where: str, problems: list[Problem]
) -> list[Rule]:
    protocol = {"all": "-1"}.get(raw.get("protocol", "tcp"), raw.get("protocol", "tcp"))
    ports = _ports(protocol, raw.get("ports"))
    if ports is None:
        problems.append(
            Problem(
                f"{where}.ports", "ports (N or FROM-TO within 0-65535) are needed for tcp and udp"
            )
        )
        return []
    rules = []
    for peer in raw[peers_key]:
        if _is_cidr(peer):
            rules.append(Rule(protocol, ports[0], ports[1], cidr=peer))
        else:
            rules.append(Rule(protocol, ports[0], ports[1], group=peer))
    return rules


def _check_owned(app: str, section: str, names: Sequence[str], problems: list[Problem]) -> None:
    for name in names:
        if not _owned(app, name):
            problems.append(
                Problem(
                    f"{section}.{name}",
                    f"name must be {app!r} or start with {app + '-'!r} (resources belong to "
                    "one app)",
                )
            )


def definition_problems(
    data: Any, app: str | None = None, env_infra: Mapping[str, Any] | None = None
) -> list[Problem]:
    """Every problem of a loaded definition (``app``: check names belong to it; ``env_infra``:
    check references to the environment's values too)."""
    if data is None:
        data = {}
    problems = _schema_problems(data, schema.DEFINITION_SCHEMA)
    if problems:
        return problems
    if env_infra is not None:
        env_problems = _schema_problems(env_infra, schema.ENV_INFRA_SCHEMA, "infra")
        if env_problems:
            return env_problems
    _resolve(data, app or "", "", env_infra, problems, check_names=app is not None)
    return problems


def check_definition_text(text: str | bytes, app: str | None = None) -> list[Problem]:
    """What the config service runs at push time: the file alone (no environment values)."""
    try:
        data = load_yaml(text)
    except InvalidInput as exc:
        return [Problem(FILE_NAME, exc.message)]
    return definition_problems(data, app)


def parse_definition(
    data: Any, app: str, env: str, env_infra: Mapping[str, Any] | None
) -> Definition:
    """The desired state of ``app`` in ``env``; InvalidInput listing every problem."""
    if isinstance(data, str | bytes):
        data = load_yaml(data)
    if data is None:
        data = {}
    env_infra = env_infra or {}
    problems = _schema_problems(data, schema.DEFINITION_SCHEMA)
    problems += _schema_problems(env_infra, schema.ENV_INFRA_SCHEMA, "infra")
    if problems:
        raise _invalid(problems)
    state = _resolve(data, app, env, env_infra, problems, check_names=True)
    if problems:
        raise _invalid(problems)
    return Definition(app=app, env=env, desired=state, prune=bool(data.get("prune", False)))


def _invalid(problems: list[Problem]) -> InvalidInput:
    message = f"{FILE_NAME}: " + "; ".join(str(p) for p in problems)
    return InvalidInput(message, field=problems[0].field)


def _resolve(
    data: Mapping[str, Any],
    app: str,
    env: str,
    env_infra: Mapping[str, Any] | None,
    problems: list[Problem],
    *,
    check_names: bool,
) -> State:
    """Build the desired state; with ``env_infra`` None, references to it are not checked."""
    infra = env_infra or {}
    tags = managed_tags(app, env)
    vpc = infra.get("vpc")
    groups_raw: Mapping[str, Any] = data.get("securityGroups") or {}
    targets_raw: Mapping[str, Any] = data.get("targetGroups") or {}
    balancers_raw: Mapping[str, Any] = data.get("loadBalancers") or {}
    role_raw: Mapping[str, Any] | None = data.get("role")
    if check_names:
        _check_owned(app, "securityGroups", list(groups_raw), problems)
        _check_owned(app, "targetGroups", list(targets_raw), problems)
        _check_owned(app, "loadBalancers", list(balancers_raw), problems)
    shared = set(infra.get("securityGroups") or [])
    known_groups = set(groups_raw) | shared

    def check_group(name: str, where: str) -> None:
        if name not in known_groups and env_infra is not None:
            problems.append(
                Problem(
                    where,
                    f"security group {name!r} is neither defined in this file nor shared by the "
                    "environment (infra.securityGroups)",
                )
            )
        elif name not in groups_raw and env_infra is None and check_names and _owned(app, name):
            problems.append(Problem(where, f"security group {name!r} is not defined in this file"))

    def rules(raw_rules: Sequence[Mapping[str, Any]], peers_key: str, where: str) -> set[Rule]:
        result: set[Rule] = set()
        for i, raw in enumerate(raw_rules):
            at = f"{where}.{i}"
            if "use" in raw:
                named = (infra.get("ingressRules") or {}).get(raw["use"])
                if named is None:
                    if env_infra is not None:
                        problems.append(
                            Problem(
                                f"{at}.use",
                                f"no rule set {raw['use']!r} in the environment's "
                                "infra.ingressRules",
                            )
                        )
                    continue
                for j, inner in enumerate(named):
                    result.update(_expand_rule(inner, "from", f"{at}.use[{j}]", problems))
            else:
                result.update(_expand_rule(raw, peers_key, at, problems))
        for rule in result:
            if rule.group is not None:
                check_group(rule.group, f"{where}")
        return result

    security_groups = {}
    for name, raw in groups_raw.items():
        egress = raw.get("egress")
        security_groups[name] = SecurityGroupSpec(
            name=name,
            description=raw.get("description") or f"{app} {env} {name} (klink)",
            vpc_id=vpc,
            ingress=frozenset(
                rules(raw.get("ingress") or [], "from", f"securityGroups.{name}.ingress")
            ),
            egress=ALL_EGRESS
            if egress is None
            else frozenset(rules(egress, "to", f"securityGroups.{name}.egress")),
            tags=tags,
        )

    target_groups = {}
    for name, raw in targets_raw.items():
        health = raw.get("healthCheck") or {}
        target_groups[name] = TargetGroupDef(
            name=name,
            port=raw["port"],
            protocol=raw.get("protocol", "HTTP"),
            health_check_path=health.get("path", "/healthcheck"),
            health_check_interval_seconds=health.get("intervalSeconds", 10),
            healthy_threshold=health.get("healthyThreshold", 2),
            unhealthy_threshold=health.get("unhealthyThreshold", 2),
            deregistration_delay_seconds=raw.get("deregistrationDelaySeconds", 30),
            frontend_port=raw.get("frontendPort"),
            vpc_id=vpc,
            tags=tags,
        )

    load_balancers, listeners = {}, {}
    for name, raw in balancers_raw.items():
        where = f"loadBalancers.{name}"
        subnets_raw = raw["subnets"]
        if isinstance(subnets_raw, str):
            subnet_sets = infra.get("subnets") or {}
            if subnets_raw not in subnet_sets and env_infra is not None:
                problems.append(
                    Problem(
                        f"{where}.subnets",
                        f"no subnet set {subnets_raw!r} in the environment's infra.subnets",
                    )
                )
            subnets = frozenset(subnet_sets.get(subnets_raw, ()))
        else:
            subnets = frozenset(subnets_raw)
        sgs = raw.get("securityGroups") or []
        for i, group in enumerate(sgs):
            check_group(group, f"{where}.securityGroups.{i}")
        load_balancers[name] = LoadBalancerSpec(
            name=name,
            scheme=raw.get("scheme", "internet-facing"),
            subnets=subnets,
            security_groups=frozenset(sgs),
            tags=tags,
        )
        for i, lraw in enumerate(raw.get("listeners") or []):
            listener = ListenerSpec(
                load_balancer=name,
                port=lraw["port"],
                protocol=lraw.get("protocol", "HTTP"),
                target_group=lraw["targetGroup"],
                tags=tags,
            )
            if listener.target_group not in targets_raw:
                problems.append(
                    Problem(
                        f"{where}.listeners.{i}.targetGroup",
                        f"target group {listener.target_group!r} is not defined in this file",
                    )
                )
            if listener.name in listeners:
                problems.append(
                    Problem(f"{where}.listeners.{i}.port", f"port {listener.port} is used twice")
                )
            listeners[listener.name] = listener

    roles = {}
    if role_raw is not None:
        role_name = role_raw.get("name") or f"{app}-{env}"
        if check_names and not _owned(app, role_name):
            problems.append(
                Problem("role.name", f"name must be {app!r} or start with {app + '-'!r}")
            )
        policies: dict[str, Mapping[str, Any]] = {}
        library = infra.get("policies") or {}
        for pname, value in (role_raw.get("policies") or {}).items():
            if isinstance(value, str):
                if value not in library:
                    if env_infra is not None:
                        problems.append(
                            Problem(
                                f"role.policies.{pname}",
                                f"no policy {value!r} in the environment's infra.policies",
                            )
                        )
                    continue
                policies[pname] = library[value]
            else:
                policies[pname] = value
        for pname, document in (infra.get("defaultPolicies") or {}).items():
            if pname in policies:
                problems.append(
                    Problem(
                        f"role.policies.{pname}",
                        f"{pname!r} is one of the environment's default policies, appended to "
                        "every role; choose another name",
                    )
                )
            policies[pname] = document
        roles[role_name] = RoleSpec(name=role_name, policies=policies, tags=tags)

    return State(
        security_groups=security_groups,
        target_groups=target_groups,
        load_balancers=load_balancers,
        listeners=listeners,
        roles=roles,
    )


def config_problems(data: Any, provider: str) -> list[Any]:
    """The config service's validator (``config/files.py``): the file alone, at push time.

    References to the environment's values and name ownership are checked when planning,
    where the app and the environment record are known.
    """
    from klink.config.params import Problem as ConfigProblem

    return [ConfigProblem(p.field, p.message) for p in definition_problems(data)]
