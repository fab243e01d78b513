"""The plan: a pure difference between desired and live state, as data.

``build_plan(definition, live)`` returns the ordered actions that bring live state to the
definition: ``create``; ``update`` with exactly the fields that differ (rule sets and policies
item by item); ``delete`` only when the definition says ``prune: true`` (otherwise a resource
removed from the file is listed under ``kept``: deleting a load balancer by accident is the worst
outcome here). Creates and updates run in kind order (security groups, target groups, load
balancers, listeners, IAM), deletes after them in the reverse order. Only tags Klink sets are
compared, so tags others add never show as drift. ``plan_hash`` is a digest of the actions, so
"apply the plan I was shown" can be checked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from klink.errors import Conflict, InvalidInput
from klink.infra.resources import (
    KIND_ORDER,
    KIND_TITLES,
    Definition,
    Resource,
    State,
    TargetGroupDef,
)
from klink.providers.infra import ListenerSpec, LoadBalancerSpec, RoleSpec, Rule, SecurityGroupSpec

CREATE, UPDATE, DELETE = "create", "update", "delete"


@dataclass(frozen=True)
class Change:
    field: str
    old: Any
    new: Any
    summary: str

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "old": self.old, "new": self.new, "summary": self.summary}


@dataclass(frozen=True)
class Action:
    op: str  # create | update | delete
    kind: str
    name: str
    line: str
    changes: tuple[Change, ...] = ()
    desired: Resource | None = field(default=None, compare=False)
    live: Resource | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "op": self.op,
            "kind": self.kind,
            "name": self.name,
            "line": self.line,
            "changes": [c.to_json() for c in self.changes],
        }
        if self.op == CREATE and self.desired is not None:
            body["spec"] = resource_json(self.desired)
        return body


@dataclass(frozen=True)
class Plan:
    app: str
    env: str
    actions: tuple[Action, ...]
    kept: tuple[str, ...] = ()  # removed from the file, left in place (prune is off)
    not_applicable: tuple[str, ...] = ()  # aws-only kinds on a provider without them

    @property
    def empty(self) -> bool:
        return not self.actions

    @property
    def plan_hash(self) -> str:
        canonical = json.dumps(
            [a.to_json() for a in self.actions], sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "env": self.env,
            "actions": [a.to_json() for a in self.actions],
            "kept": list(self.kept),
            "not_applicable": list(self.not_applicable),
            "plan_hash": self.plan_hash,
            "empty": self.empty,
        }


@dataclass(frozen=True)
class Live:
    """What the provider reports: managed resources of this app+env and resources of the
    definition's names (adopted when untagged); ``foreign`` names resources of those names that
    another app or environment manages (kind, name) → owner."""

    state: State
    foreign: Mapping[tuple[str, str], str] = field(default_factory=dict)
    unsupported_kinds: frozenset[str] = frozenset()
    # Names of every security group in the VPC (None: not known, e.g. on the local provider).
    existing_groups: frozenset[str] | None = None


def canonical(value: Any) -> Any:
    """JSON round trip with sorted keys: policy documents compare by content."""
    return json.loads(json.dumps(value, sort_keys=True))


def _rules_json(rules: Iterable[Rule]) -> list[str]:
    return sorted(r.describe() for r in rules)


def resource_json(resource: Resource) -> dict[str, Any]:
    if isinstance(resource, SecurityGroupSpec):
        return {
            "name": resource.name,
            "description": resource.description,
            "ingress": _rules_json(resource.ingress),
            "egress": _rules_json(resource.egress),
        }
    if isinstance(resource, TargetGroupDef):
        return {"name": resource.name, **_target_fields(resource)}
    if isinstance(resource, LoadBalancerSpec):
        return {
            "name": resource.name,
            "scheme": resource.scheme,
            "subnets": sorted(resource.subnets),
            "security_groups": sorted(resource.security_groups),
        }
    if isinstance(resource, ListenerSpec):
        return {
            "load_balancer": resource.load_balancer,
            "port": resource.port,
            "protocol": resource.protocol,
            "target_group": resource.target_group,
            "certificate": resource.certificate,
        }
    return {
        "name": resource.name,
        "policies": canonical(dict(resource.policies)),
        "trust_policy": canonical(dict(resource.trust_policy)),
    }


def _target_fields(tg: TargetGroupDef) -> dict[str, Any]:
    return {
        "port": tg.port,
        "protocol": tg.protocol,
        "health_check_path": tg.health_check_path,
        "health_check_interval_seconds": tg.health_check_interval_seconds,
        "healthy_threshold": tg.healthy_threshold,
        "unhealthy_threshold": tg.unhealthy_threshold,
        "deregistration_delay_seconds": tg.deregistration_delay_seconds,
        "frontend_port": tg.frontend_port,
    }


def _tag_changes(desired: Mapping[str, str], live: Mapping[str, str]) -> list[Change]:
    differing = {k: v for k, v in desired.items() if live.get(k) != v}
    if not differing:
        return []
    old = {k: live.get(k) for k in differing}
    summary = "tags " + ", ".join(f"{k}={v}" for k, v in sorted(differing.items()))
    return [Change("tags", old, dict(differing), summary)]


def _rule_change(name: str, desired: frozenset[Rule], live: frozenset[Rule]) -> list[Change]:
    added, removed = desired - live, live - desired
    if not added and not removed:
        return []
    parts = [f"+{r.describe()}" for r in sorted(added)] + [
        f"-{r.describe()}" for r in sorted(removed)
    ]
    return [Change(name, _rules_json(live), _rules_json(desired), f"{name} {', '.join(parts)}")]


def _field_changes(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[Change]:
    changes = []
    for key, new in desired.items():
        old = live.get(key)
        if old != new:
            changes.append(Change(key, old, new, f"{key} {_show(old)} -> {_show(new)}"))
    return changes


def _show(value: Any) -> str:
    if isinstance(value, list | tuple | frozenset | set):
        return "[" + ", ".join(sorted(str(v) for v in value)) + "]"
    return json.dumps(value) if not isinstance(value, str) else value


def diff(desired: Resource, live: Resource) -> list[Change]:
    """The fields of ``live`` that differ from ``desired`` (the same kind)."""
    if isinstance(desired, SecurityGroupSpec) and isinstance(live, SecurityGroupSpec):
        return [
            *_rule_change("ingress", desired.ingress, live.ingress),
            *_rule_change("egress", desired.egress, live.egress),
            *_tag_changes(desired.tags, live.tags),
        ]
    if isinstance(desired, TargetGroupDef) and isinstance(live, TargetGroupDef):
        wanted, have = _target_fields(desired), _target_fields(live)
        if desired.frontend_port is None:
            wanted.pop("frontend_port")
        return [*_field_changes(wanted, have), *_tag_changes(desired.tags, live.tags)]
    if isinstance(desired, LoadBalancerSpec) and isinstance(live, LoadBalancerSpec):
        changes = _field_changes(
            {
                "scheme": desired.scheme,
                "subnets": sorted(desired.subnets),
                "security_groups": sorted(desired.security_groups),
            },
            {
                "scheme": live.scheme,
                "subnets": sorted(live.subnets),
                "security_groups": sorted(live.security_groups),
            },
        )
        return [*changes, *_tag_changes(desired.tags, live.tags)]
    if isinstance(desired, ListenerSpec) and isinstance(live, ListenerSpec):
        return _field_changes(
            {
                "protocol": desired.protocol,
                "target_group": desired.target_group,
                "certificate": desired.certificate,
            },
            {
                "protocol": live.protocol,
                "target_group": live.target_group,
                "certificate": live.certificate,
            },
        )
    if isinstance(desired, RoleSpec) and isinstance(live, RoleSpec):
        return _role_changes(desired, live)
    raise TypeError(f"cannot compare {type(desired).__name__} with {type(live).__name__}")


def _role_changes(desired: RoleSpec, live: RoleSpec) -> list[Change]:
    changes = []
    if canonical(dict(desired.trust_policy)) != canonical(dict(live.trust_policy)):
        changes.append(
            Change(
                "trust_policy",
                canonical(dict(live.trust_policy)),
                canonical(dict(desired.trust_policy)),
                "trust policy (EC2 may assume the role)",
            )
        )
    for pname in sorted(set(desired.policies) | set(live.policies)):
        new = desired.policies.get(pname)
        old = live.policies.get(pname)
        new_c = canonical(dict(new)) if new is not None else None
        old_c = canonical(dict(old)) if old is not None else None
        if new_c == old_c:
            continue
        verb = "added" if old_c is None else "removed" if new_c is None else "changed"
        changes.append(Change(f"policies.{pname}", old_c, new_c, f"policy {pname} {verb}"))
    if not live.instance_profile:
        changes.append(
            Change("instance_profile", None, desired.name, f"instance profile {desired.name}")
        )
    return [*changes, *_tag_changes(desired.tags, live.tags)]


def _line(op: str, kind: str, name: str, changes: Iterable[Change] = ()) -> str:
    title = KIND_TITLES[kind]
    if op == UPDATE:
        return f"update {title} {name}: " + "; ".join(c.summary for c in changes)
    return f"{op} {title} {name}"


def build_plan(definition: Definition, live: Live) -> Plan:
    """The actions that bring ``live`` to ``definition`` (pure)."""
    desired = definition.desired
    for kind in KIND_ORDER:
        for name in desired.of_kind(kind):
            owner = live.foreign.get((kind, name))
            if owner is not None:
                raise Conflict(
                    f"{KIND_TITLES[kind]} {name!r} exists and is managed by {owner}; "
                    "rename it in infrastructure.yaml",
                    field=name,
                )
    _check_group_references(desired, live)
    ups: list[Action] = []
    deletes: list[Action] = []
    kept: list[str] = []
    not_applicable: list[str] = []
    for kind in KIND_ORDER:
        wanted = desired.of_kind(kind)
        have = live.state.of_kind(kind)
        if kind in live.unsupported_kinds:
            not_applicable += [
                f"{KIND_TITLES[kind]} {name}: not applicable on this provider"
                for name in sorted(wanted)
            ]
            continue
        for name in sorted(wanted):
            spec, current = wanted[name], have.get(name)
            if current is None:
                ups.append(Action(CREATE, kind, name, _line(CREATE, kind, name), desired=spec))
                continue
            changes = diff(spec, current)
            if changes:
                ups.append(
                    Action(
                        UPDATE,
                        kind,
                        name,
                        _line(UPDATE, kind, name, changes),
                        tuple(changes),
                        desired=spec,
                        live=current,
                    )
                )
        for name in sorted(set(have) - set(wanted)):
            if definition.prune:
                deletes.append(
                    Action(DELETE, kind, name, _line(DELETE, kind, name), live=have[name])
                )
            else:
                kept.append(f"{KIND_TITLES[kind]} {name} (not in the file; prune is off)")
    order = {kind: i for i, kind in enumerate(KIND_ORDER)}
    deletes.sort(key=lambda a: (-order[a.kind], a.name))
    return Plan(
        app=definition.app,
        env=definition.env,
        actions=(*ups, *deletes),
        kept=tuple(kept),
        not_applicable=tuple(not_applicable),
    )


def _check_group_references(desired: State, live: Live) -> None:
    """Every security group named by a rule or a load balancer is defined here or exists
    (a shared group of the environment); else the plan would fail halfway through apply."""
    if live.existing_groups is None:
        return
    known = set(desired.security_groups) | live.existing_groups
    for group in desired.security_groups.values():
        for rule in sorted(group.ingress | group.egress):
            if rule.group is not None and rule.group not in known:
                raise InvalidInput(
                    f"security group {group.name} names group {rule.group!r}, which does not "
                    "exist in the VPC",
                    field=f"securityGroups.{group.name}",
                )
    for lb in desired.load_balancers.values():
        for name in sorted(lb.security_groups - known):
            raise InvalidInput(
                f"load balancer {lb.name} names security group {name!r}, which does not exist "
                "in the VPC",
                field=f"loadBalancers.{lb.name}.securityGroups",
            )
