"""The boto3 side of infrastructure: security groups, ELBv2 load balancers and listeners, IAM.

Target groups are not here: they go through the generic ``Provider`` interface (``targets.py``).
Every call goes through ``AwsSession.call`` (Klink's retry policy for throttling and transient
errors) and comes out as Klink's errors. Resources are addressed by Klink name; ids and ARNs are
looked up per call, never cached, so a resource recreated behind Klink's back is not addressed
by a stale id. Everything created carries ``klink:managed-by=infra``, ``klink:app`` and
``klink:env``; roles and instance profiles live under the IAM path ``/klink/`` so they can be
listed without reading every role of the account.

Reading returns ``klink.infra.resources`` specs: rules as one source each, group references and
load balancer security groups by group *name*, policy documents decoded.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from klink.errors import Conflict, NotFound, ProviderError
from klink.infra.resources import (
    ListenerSpec,
    LoadBalancerSpec,
    RoleSpec,
    Rule,
    SecurityGroupSpec,
)
from klink.providers.aws.convert import chunks, tag_list, tags_of
from klink.providers.aws.session import AwsSession
from klink.providers.base import TAG_APP, TAG_ENV, TAG_MANAGED_BY

IAM_PATH = "/klink/"


@dataclass(frozen=True)
class Found:
    """What one read returns: resources of this app+env (managed, or named in the definition
    and not managed by anyone) and names managed by another app+env (name → owner)."""

    mine: dict[str, Any] = field(default_factory=dict)
    foreign: dict[str, str] = field(default_factory=dict)


def _owner(tags: Mapping[str, str]) -> str | None:
    if tags.get(TAG_MANAGED_BY) != "infra":
        return None
    return f"app {tags.get(TAG_APP, '?')} in {tags.get(TAG_ENV, '?')}"


def _sort(tags: Mapping[str, str], name: str, app: str, env: str, names: set[str]) -> str:
    """'mine', 'foreign' or 'other' for a resource named ``name`` with ``tags``."""
    owner = _owner(tags)
    if owner is not None:
        if tags.get(TAG_APP) == app and tags.get(TAG_ENV) == env:
            return "mine"
        return "foreign" if name in names else "other"
    return "mine" if name in names else "other"


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


class AwsInfra:
    """Infrastructure kinds of one AWS account+region."""

    def __init__(self, session: AwsSession, vpc_id: str | None = None) -> None:
        self.session = session
        self._vpc_id = vpc_id

    @property
    def _ec2(self) -> Any:
        return self.session.client("ec2")

    @property
    def _elb(self) -> Any:
        return self.session.client("elbv2")

    @property
    def _iam(self) -> Any:
        return self.session.client("iam")

    # VPC ----------------------------------------------------------------------------------
    def vpc_id(self) -> str:
        """The environment's VPC (``infra.vpc``), else the account's default VPC."""
        if self._vpc_id is not None:
            return self._vpc_id
        ec2 = self._ec2
        vpcs = self.session.call(
            "find the default VPC",
            lambda: ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"],
        )
        if not vpcs:
            raise NotFound(
                "this account has no default VPC; set the environment's infra.vpc",
                field="infra.vpc",
            )
        self._vpc_id = str(vpcs[0]["VpcId"])
        return self._vpc_id

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
            where = _sort(tags, g["GroupName"], app, env, wanted)
            if where == "foreign":
                found.foreign[g["GroupName"]] = _owner(tags) or "?"
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

    # Load balancers -----------------------------------------------------------------------
    def _all_balancers(self) -> list[tuple[dict[str, Any], dict[str, str]]]:
        elb = self._elb

        def run() -> list[tuple[dict[str, Any], dict[str, str]]]:
            pages = elb.get_paginator("describe_load_balancers").paginate()
            raws = [lb for page in pages for lb in page["LoadBalancers"]]
            tags: dict[str, dict[str, str]] = {}
            for batch in chunks([lb["LoadBalancerArn"] for lb in raws], 20):
                for desc in elb.describe_tags(ResourceArns=list(batch))["TagDescriptions"]:
                    tags[desc["ResourceArn"]] = tags_of(desc.get("Tags"))
            return [(lb, tags.get(lb["LoadBalancerArn"], {})) for lb in raws]

        return self.session.call("describe load balancers", run)

    def _balancer_arn(self, name: str) -> str | None:
        elb = self._elb

        def run() -> str | None:
            found = elb.describe_load_balancers(Names=[name])["LoadBalancers"]
            return str(found[0]["LoadBalancerArn"]) if found else None

        try:
            return self.session.call(f"describe load balancer {name}", run)
        except NotFound:
            return None

    def load_balancers(self, app: str, env: str, names: Iterable[str]) -> Found:
        wanted = set(names)
        group_names = {g["GroupId"]: g["GroupName"] for g in self._all_groups()}
        found = Found()
        for raw, tags in self._all_balancers():
            name = raw["LoadBalancerName"]
            where = _sort(tags, name, app, env, wanted)
            if where == "foreign":
                found.foreign[name] = _owner(tags) or "?"
            elif where == "mine":
                found.mine[name] = LoadBalancerSpec(
                    name=name,
                    scheme=raw.get("Scheme", "internet-facing"),
                    subnets=frozenset(z["SubnetId"] for z in raw.get("AvailabilityZones", ())),
                    security_groups=frozenset(
                        group_names.get(g, g) for g in raw.get("SecurityGroups", ())
                    ),
                    tags=tags,
                    id=raw["LoadBalancerArn"],
                    dns_name=raw.get("DNSName"),
                )
        return found

    def _group_ids_for(self, names: Iterable[str]) -> list[str]:
        ids = self.group_ids()
        out = []
        for name in sorted(names):
            if name not in ids:
                raise NotFound(f"security group {name!r} not found", field="security_group")
            out.append(ids[name])
        return out

    def create_load_balancer(self, spec: LoadBalancerSpec) -> str:
        elb = self._elb
        groups = self._group_ids_for(spec.security_groups)
        kwargs: dict[str, Any] = {
            "Name": spec.name,
            "Subnets": sorted(spec.subnets),
            "Scheme": spec.scheme,
            "Type": "application",
            "Tags": tag_list(spec.tags),
        }
        if groups:
            kwargs["SecurityGroups"] = groups
        answer = self.session.call(
            f"create load balancer {spec.name}", lambda: elb.create_load_balancer(**kwargs)
        )
        return str(answer["LoadBalancers"][0]["LoadBalancerArn"])

    def update_load_balancer(self, spec: LoadBalancerSpec, live: LoadBalancerSpec) -> None:
        if spec.scheme != live.scheme:
            raise Conflict(
                f"load balancer {spec.name} is {live.scheme}; a scheme cannot change in place "
                "(give the load balancer a new name)",
                field="scheme",
            )
        elb, arn = self._elb, live.id or self._balancer_arn(spec.name)
        if arn is None:
            raise NotFound(f"load balancer {spec.name} not found", field="load_balancer")
        if spec.subnets != live.subnets:
            self.session.call(
                f"set subnets of {spec.name}",
                lambda: elb.set_subnets(LoadBalancerArn=arn, Subnets=sorted(spec.subnets)),
            )
        if spec.security_groups != live.security_groups:
            groups = self._group_ids_for(spec.security_groups)
            self.session.call(
                f"set security groups of {spec.name}",
                lambda: elb.set_security_groups(LoadBalancerArn=arn, SecurityGroups=groups),
            )
        missing = {k: v for k, v in spec.tags.items() if live.tags.get(k) != v}
        if missing:
            self.session.call(
                f"tag load balancer {spec.name}",
                lambda: elb.add_tags(ResourceArns=[arn], Tags=tag_list(missing)),
            )

    def delete_load_balancer(self, name: str) -> None:
        arn = self._balancer_arn(name)
        if arn is None:
            return
        elb = self._elb
        with contextlib.suppress(NotFound):
            self.session.call(
                f"delete load balancer {name}",
                lambda: elb.delete_load_balancer(LoadBalancerArn=arn),
            )

    # Listeners ----------------------------------------------------------------------------
    def listeners(self, balancers: Iterable[LoadBalancerSpec]) -> dict[str, ListenerSpec]:
        """Every listener of ``balancers`` (live specs, with their ARNs)."""
        elb = self._elb
        out: dict[str, ListenerSpec] = {}
        for lb in balancers:
            if lb.id is None:
                continue
            arn = lb.id

            def run(arn: str = arn) -> list[dict[str, Any]]:
                pages = elb.get_paginator("describe_listeners").paginate(LoadBalancerArn=arn)
                return [x for page in pages for x in page["Listeners"]]

            for raw in self.session.call(f"describe listeners of {lb.name}", run):
                forward = next(
                    (
                        a["TargetGroupArn"]
                        for a in raw.get("DefaultActions", ())
                        if a.get("TargetGroupArn")
                    ),
                    "",
                )
                spec = ListenerSpec(
                    load_balancer=lb.name,
                    port=int(raw["Port"]),
                    protocol=raw.get("Protocol", "HTTP"),
                    target_group=forward.split(":targetgroup/", 1)[-1].split("/", 1)[0],
                    id=raw["ListenerArn"],
                )
                out[spec.name] = spec
        return out

    def _target_group_arn(self, name: str) -> str:
        elb = self._elb
        answer = self.session.call(
            f"describe target group {name}", lambda: elb.describe_target_groups(Names=[name])
        )
        groups = answer["TargetGroups"]
        if not groups:
            raise NotFound(f"target group {name} not found", field="target_group")
        return str(groups[0]["TargetGroupArn"])

    def create_listener(self, spec: ListenerSpec) -> None:
        elb = self._elb
        lb_arn = self._balancer_arn(spec.load_balancer)
        if lb_arn is None:
            raise NotFound(f"load balancer {spec.load_balancer} not found", field="load_balancer")
        tg_arn = self._target_group_arn(spec.target_group)
        self.session.call(
            f"create listener {spec.name}",
            lambda: elb.create_listener(
                LoadBalancerArn=lb_arn,
                Protocol=spec.protocol,
                Port=spec.port,
                DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}],
            ),
        )

    def update_listener(self, spec: ListenerSpec, live: ListenerSpec) -> None:
        elb, tg_arn = self._elb, self._target_group_arn(spec.target_group)
        self.session.call(
            f"modify listener {spec.name}",
            lambda: elb.modify_listener(
                ListenerArn=live.id,
                Protocol=spec.protocol,
                Port=spec.port,
                DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}],
            ),
        )

    def delete_listener(self, live: ListenerSpec) -> None:
        elb = self._elb
        with contextlib.suppress(NotFound):
            self.session.call(
                f"delete listener {live.name}", lambda: elb.delete_listener(ListenerArn=live.id)
            )

    # IAM ----------------------------------------------------------------------------------
    def _role(self, name: str) -> RoleSpec | None:
        iam = self._iam

        def run() -> RoleSpec | None:
            try:
                role = iam.get_role(RoleName=name)["Role"]
            except iam.exceptions.NoSuchEntityException:
                return None
            tags = tags_of(role.get("Tags"))
            if not tags:
                tags = tags_of(iam.list_role_tags(RoleName=name).get("Tags"))
            policies: dict[str, Any] = {}
            pages = iam.get_paginator("list_role_policies").paginate(RoleName=name)
            for pname in (p for page in pages for p in page["PolicyNames"]):
                document = iam.get_role_policy(RoleName=name, PolicyName=pname)["PolicyDocument"]
                policies[pname] = _document(document)
            try:
                profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
                has_profile = any(r["RoleName"] == name for r in profile.get("Roles", ()))
            except iam.exceptions.NoSuchEntityException:
                has_profile = False
            return RoleSpec(
                name=name,
                policies=policies,
                trust_policy=_document(role.get("AssumeRolePolicyDocument", {})),
                tags=tags,
                instance_profile=has_profile,
                id=role.get("Arn"),
            )

        return self.session.call(f"describe role {name}", run)

    def roles(self, app: str, env: str, names: Iterable[str]) -> Found:
        iam = self._iam
        wanted = set(names)

        def run() -> list[str]:
            pages = iam.get_paginator("list_roles").paginate(PathPrefix=IAM_PATH)
            return [r["RoleName"] for page in pages for r in page["Roles"]]

        found = Found()
        for name in sorted(set(self.session.call("list roles", run)) | wanted):
            role = self._role(name)
            if role is None:
                continue
            where = _sort(role.tags, name, app, env, wanted)
            if where == "foreign":
                found.foreign[name] = _owner(role.tags) or "?"
            elif where == "mine":
                found.mine[name] = role
        return found

    def sync_role(self, spec: RoleSpec) -> None:
        """Create or update the role, its inline policies and its instance profile."""
        iam = self._iam
        live = self._role(spec.name)
        trust = json.dumps(spec.trust_policy, sort_keys=True)
        if live is None:
            self.session.call(
                f"create role {spec.name}",
                lambda: iam.create_role(
                    RoleName=spec.name,
                    Path=IAM_PATH,
                    AssumeRolePolicyDocument=trust,
                    Tags=tag_list(spec.tags),
                ),
            )
            live = RoleSpec(spec.name, {}, trust_policy={}, tags=spec.tags, instance_profile=False)
        elif _canonical(live.trust_policy) != _canonical(spec.trust_policy):
            self.session.call(
                f"update trust policy of {spec.name}",
                lambda: iam.update_assume_role_policy(RoleName=spec.name, PolicyDocument=trust),
            )
        for pname, document in sorted(spec.policies.items()):
            if _canonical(live.policies.get(pname)) != _canonical(document):
                body = json.dumps(document, sort_keys=True)
                self.session.call(
                    f"put policy {pname} of {spec.name}",
                    lambda p=pname, b=body: iam.put_role_policy(  # type: ignore[misc]
                        RoleName=spec.name, PolicyName=p, PolicyDocument=b
                    ),
                )
        for pname in sorted(set(live.policies) - set(spec.policies)):
            self._ignore_missing(
                f"delete policy {pname} of {spec.name}",
                lambda p=pname: iam.delete_role_policy(RoleName=spec.name, PolicyName=p),
            )
        missing = {k: v for k, v in spec.tags.items() if live.tags.get(k) != v}
        if missing:
            self.session.call(
                f"tag role {spec.name}",
                lambda: iam.tag_role(RoleName=spec.name, Tags=tag_list(missing)),
            )
        if not live.instance_profile:
            self._ensure_profile(spec)

    def _ensure_profile(self, spec: RoleSpec) -> None:
        iam = self._iam

        def run() -> None:
            try:
                profile = iam.get_instance_profile(InstanceProfileName=spec.name)["InstanceProfile"]
            except iam.exceptions.NoSuchEntityException:
                profile = iam.create_instance_profile(
                    InstanceProfileName=spec.name, Path=IAM_PATH, Tags=tag_list(spec.tags)
                )["InstanceProfile"]
            held = [r["RoleName"] for r in profile.get("Roles", ())]
            for other in held:
                if other != spec.name:
                    iam.remove_role_from_instance_profile(
                        InstanceProfileName=spec.name, RoleName=other
                    )
            if spec.name not in held:
                iam.add_role_to_instance_profile(InstanceProfileName=spec.name, RoleName=spec.name)

        self.session.call(f"instance profile {spec.name}", run)

    def delete_role(self, name: str) -> None:
        """Delete the instance profile, the inline and attached policies, then the role."""
        iam = self._iam

        def run() -> None:
            try:
                profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
            except iam.exceptions.NoSuchEntityException:
                profile = None
            if profile is not None:
                for held in profile.get("Roles", ()):
                    iam.remove_role_from_instance_profile(
                        InstanceProfileName=name, RoleName=held["RoleName"]
                    )
                iam.delete_instance_profile(InstanceProfileName=name)
            try:
                pages = iam.get_paginator("list_role_policies").paginate(RoleName=name)
                for pname in [p for page in pages for p in page["PolicyNames"]]:
                    iam.delete_role_policy(RoleName=name, PolicyName=pname)
                attached = iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
                for arn in [p["PolicyArn"] for page in attached for p in page["AttachedPolicies"]]:
                    iam.detach_role_policy(RoleName=name, PolicyArn=arn)
                iam.delete_role(RoleName=name)
            except iam.exceptions.NoSuchEntityException:
                return

        self.session.call(f"delete role {name}", run)

    def _ignore_missing(self, what: str, fn: Any) -> None:
        with contextlib.suppress(NotFound):
            self.session.call(what, fn)


def _document(value: Any) -> dict[str, Any]:
    """A policy document as a dict (botocore decodes IAM documents; strings are decoded here)."""
    if isinstance(value, str):
        from urllib.parse import unquote

        try:
            decoded: dict[str, Any] = json.loads(unquote(value))
        except ValueError as exc:
            raise ProviderError(f"unreadable policy document: {exc}") from None
        return decoded
    return dict(value)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
