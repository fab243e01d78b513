"""Security groups: rules as one source each, group references by name, rule-by-rule sync."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from klink.errors import NotFound
from klink.providers.aws.convert import tag_list, tags_of
from klink.providers.aws.infra.common import Base, Found, owner, sort_out
from klink.providers.infra import Rule, SecurityGroupSpec


def _permission(rule: Rule, group_ids: Mapping[str, str]) -> dict[str, Any]:
    perm: dict[str, Any] = {"IpProtocol": rule.protocol}
    if rule.protocol != "-1":
        perm["FromPort"], perm["ToPort"] = rule.from_port, rule.to_port
    if rule.cidr is not None:
        if ":" in rule.cidr:
            perm["Ipv6Ranges"] = [{"CidrIpv6": rule.cidr}]
        else:
            perm["IpRanges"] = [{"CidrIp": rule.cidr}]
    else:
        assert rule.group is not None
        group_id = group_ids.get(rule.group)
        if group_id is None:
            if not rule.group.startswith("sg-"):
                raise NotFound(f"security group {rule.group!r} not found", field="security_group")
            group_id = rule.group  # a group Klink could not name: addressed by its id
        perm["UserIdGroupPairs"] = [{"GroupId": group_id}]
    return perm


def _rules_of(
    permissions: Iterable[Mapping[str, Any]], names: Mapping[str, str]
) -> frozenset[Rule]:
    rules: set[Rule] = set()
    for perm in permissions:
        protocol = str(perm.get("IpProtocol", "-1"))
        if protocol == "-1":
            low, high = 0, 65535
        else:
            low, high = int(perm.get("FromPort", -1)), int(perm.get("ToPort", -1))
        for r in perm.get("IpRanges", ()):
            rules.add(Rule(protocol, low, high, cidr=r["CidrIp"]))
        for r in perm.get("Ipv6Ranges", ()):
            rules.add(Rule(protocol, low, high, cidr=r["CidrIpv6"]))
        for pair in perm.get("UserIdGroupPairs", ()):
            rules.add(Rule(protocol, low, high, group=names.get(pair["GroupId"], pair["GroupId"])))
    return frozenset(rules)


def _group_spec(raw: Mapping[str, Any], by_id: Mapping[str, str]) -> SecurityGroupSpec:
    return SecurityGroupSpec(
        name=raw["GroupName"],
        description=raw.get("Description", ""),
        vpc_id=raw.get("VpcId"),
        ingress=_rules_of(raw.get("IpPermissions", ()), by_id),
        egress=_rules_of(raw.get("IpPermissionsEgress", ()), by_id),
        tags=tags_of(raw.get("Tags")),
        id=raw["GroupId"],
    )


class SecurityGroups(Base):
    # Security groups ----------------------------------------------------------------------
    def _all_groups(self) -> list[dict[str, Any]]:
        ec2, vpc = self._ec2, self.vpc_id()

        def run() -> list[dict[str, Any]]:
            pages = ec2.get_paginator("describe_security_groups").paginate(
                Filters=[{"Name": "vpc-id", "Values": [vpc]}]
            )
            return [g for page in pages for g in page["SecurityGroups"]]

        return self.session.call("describe security groups", run)

    def group_ids(self) -> dict[str, str]:
        """Name → id of every security group in the VPC."""
        return {g["GroupName"]: g["GroupId"] for g in self._all_groups()}

    def security_groups(self, app: str, env: str, names: Iterable[str]) -> Found:
        raws = self._all_groups()
        by_id = {g["GroupId"]: g["GroupName"] for g in raws}
        wanted = set(names)
        found = Found()
        for g in raws:
            tags = tags_of(g.get("Tags"))
            where = sort_out(tags, g["GroupName"], app, env, wanted)
            if where == "foreign":
                found.foreign[g["GroupName"]] = owner(tags) or "?"
            elif where == "mine":
                found.mine[g["GroupName"]] = _group_spec(g, by_id)
        return found

    def create_security_group(self, spec: SecurityGroupSpec) -> str:
        """Create the group bare (AWS adds its default egress rule); rules come after, when
        every group they may name exists."""
        ec2, vpc = self._ec2, spec.vpc_id or self.vpc_id()
        answer = self.session.call(
            f"create security group {spec.name}",
            lambda: ec2.create_security_group(
                GroupName=spec.name,
                Description=spec.description,
                VpcId=vpc,
                TagSpecifications=[{"ResourceType": "security-group", "Tags": tag_list(spec.tags)}],
            ),
        )
        return str(answer["GroupId"])

    def sync_security_group(self, spec: SecurityGroupSpec) -> None:
        """Make the group's rules and Klink's tags those of ``spec``: authorize what is
        missing, revoke what is extra (rule by rule, so unchanged rules never blink)."""
        ec2, raws = self._ec2, self._all_groups()
        ids = {g["GroupName"]: g["GroupId"] for g in raws}
        raw = next((g for g in raws if g["GroupName"] == spec.name), None)
        if raw is None:
            raise NotFound(f"security group {spec.name} not found", field="security_group")
        group_id = raw["GroupId"]
        # Rules as they are now, not as the plan saw them: a rerun after a partial apply
        # authorizes only what is still missing.
        live = _group_spec(raw, {v: k for k, v in ids.items()})
        for direction, desired, current in (
            ("ingress", spec.ingress, live.ingress),
            ("egress", spec.egress, live.egress),
        ):
            add = [_permission(r, ids) for r in sorted(desired - current)]
            remove = [_permission(r, ids) for r in sorted(current - desired)]
            authorize = getattr(ec2, f"authorize_security_group_{direction}")
            revoke = getattr(ec2, f"revoke_security_group_{direction}")
            if add:
                self.session.call(
                    f"authorize {direction} of {spec.name}",
                    lambda a=authorize, p=add: a(GroupId=group_id, IpPermissions=p),  # type: ignore[misc]
                )
            if remove:
                self.session.call(
                    f"revoke {direction} of {spec.name}",
                    lambda r=revoke, p=remove: r(GroupId=group_id, IpPermissions=p),  # type: ignore[misc]
                )
        missing = {k: v for k, v in spec.tags.items() if live.tags.get(k) != v}
        if missing:
            self.session.call(
                f"tag security group {spec.name}",
                lambda: ec2.create_tags(Resources=[group_id], Tags=tag_list(missing)),
            )

    def delete_security_group(self, name: str) -> None:
        group_id = self.group_ids().get(name)
        if group_id is None:
            return
        ec2 = self._ec2
        with contextlib.suppress(NotFound):
            self.session.call(
                f"delete security group {name}",
                lambda: ec2.delete_security_group(GroupId=group_id),
            )
