"""ELBv2 application load balancers and their listeners (forwarding to target groups)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from klink.errors import Conflict, NotFound
from klink.providers.aws.convert import chunks, tag_list, tags_of
from klink.providers.aws.infra.common import Found, owner, sort_out
from klink.providers.aws.infra.groups import SecurityGroups
from klink.providers.infra import ListenerSpec, LoadBalancerSpec


class Balancers(SecurityGroups):
    """Load balancers name their security groups, so this builds on ``SecurityGroups``."""

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
            where = sort_out(tags, name, app, env, wanted)
            if where == "foreign":
                found.foreign[name] = owner(tags) or "?"
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
                certificates = raw.get("Certificates") or [{}]
                spec = ListenerSpec(
                    load_balancer=lb.name,
                    port=int(raw["Port"]),
                    protocol=raw.get("Protocol", "HTTP"),
                    certificate=certificates[0].get("CertificateArn"),
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
                **_certificates(spec),
                **({"Tags": tag_list(spec.tags)} if spec.tags else {}),
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
                **_certificates(spec),
            ),
        )

    def delete_listener(self, live: ListenerSpec) -> None:
        elb = self._elb
        with contextlib.suppress(NotFound):
            self.session.call(
                f"delete listener {live.name}", lambda: elb.delete_listener(ListenerArn=live.id)
            )


def _certificates(spec: ListenerSpec) -> dict[str, Any]:
    if spec.certificate is None:
        return {}
    return {"Certificates": [{"CertificateArn": spec.certificate}]}
