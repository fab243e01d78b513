"""ELBv2 application load balancers and their listeners (forwarding to target groups).

A listener fronts one target group (its *home*). Once deployments move traffic by weight
(``providers/aws/traffic.py``), its forward action also names the deployment groups' member
target groups with their weights: reading tells them apart (``forwards.py``), so a weighted
listener reads as fronting its home, and changing a listener keeps the members and weights
(only a change of the target group it fronts touches the forward action, and that is refused
while another target group's deployment groups are attached to it)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from klink.errors import Conflict, NotFound
from klink.providers.aws.convert import chunks, forward_of, tag_list, tags_of
from klink.providers.aws.forwards import (
    forward_action,
    listeners_fronting,
    read_forward,
    target_group_tags,
    with_forward,
)
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
        """Every listener of ``balancers`` (live specs, with their ARNs). A weighted forward
        action (traffic by weight) fronts its home target group: the deployment groups'
        members beside it are the deployments' business and never part of the spec."""
        elb = self._elb
        out: dict[str, ListenerSpec] = {}
        for lb in balancers:
            if lb.id is None:
                continue
            arn = lb.id

            def run(arn: str = arn) -> list[dict[str, Any]]:
                pages = elb.get_paginator("describe_listeners").paginate(LoadBalancerArn=arn)
                return [x for page in pages for x in page["Listeners"]]

            raws = self.session.call(f"describe listeners of {lb.name}", run)
            tags = target_group_tags(
                self.session, [a for raw in raws for a in forward_of(raw) or {}]
            )
            for raw in raws:
                forward = read_forward(raw, tags)
                certificates = raw.get("Certificates") or [{}]
                spec = ListenerSpec(
                    load_balancer=lb.name,
                    port=int(raw["Port"]),
                    protocol=raw.get("Protocol", "HTTP"),
                    certificate=certificates[0].get("CertificateArn"),
                    # Several only when someone put another target group there by hand.
                    target_group="+".join(forward.homes) if forward is not None else "",
                    id=raw["ListenerArn"],
                )
                out[spec.name] = spec
        return out

    def _target_group(self, name: str) -> dict[str, Any]:
        elb = self._elb
        answer = self.session.call(
            f"describe target group {name}", lambda: elb.describe_target_groups(Names=[name])
        )
        groups = answer["TargetGroups"]
        if not groups:
            raise NotFound(f"target group {name} not found", field="target_group")
        found: dict[str, Any] = groups[0]
        return found

    def _listener(self, arn: str) -> dict[str, Any]:
        elb = self._elb
        answer = self.session.call(
            f"describe listener {arn}", lambda: elb.describe_listeners(ListenerArns=[arn])
        )
        if not answer["Listeners"]:
            raise NotFound(f"listener {arn} not found", field="listener")
        found: dict[str, Any] = answer["Listeners"][0]
        return found

    def create_listener(self, spec: ListenerSpec) -> None:
        elb = self._elb
        lb_arn = self._balancer_arn(spec.load_balancer)
        if lb_arn is None:
            raise NotFound(f"load balancer {spec.load_balancer} not found", field="load_balancer")
        actions = self._actions_for(spec, None, self._target_group(spec.target_group))
        assert actions is not None
        self.session.call(
            f"create listener {spec.name}",
            lambda: elb.create_listener(
                LoadBalancerArn=lb_arn,
                Protocol=spec.protocol,
                Port=spec.port,
                DefaultActions=actions,
                **_certificates(spec),
                **({"Tags": tag_list(spec.tags)} if spec.tags else {}),
            ),
        )

    def update_listener(self, spec: ListenerSpec, live: ListenerSpec) -> None:
        """Protocol, port and certificate as ``spec`` says; the forward action changes only
        when the target group it fronts does (read again now: a deployment may have shifted
        weights since the plan)."""
        if live.id is None:
            raise NotFound(f"listener {spec.name} not found", field="listener")
        raw = self._listener(live.id)
        actions = self._actions_for(spec, raw, self._target_group(spec.target_group))
        elb = self._elb
        self.session.call(
            f"modify listener {spec.name}",
            lambda: elb.modify_listener(
                ListenerArn=live.id,
                Protocol=spec.protocol,
                Port=spec.port,
                **_certificates(spec),
                **({"DefaultActions": actions} if actions is not None else {}),
            ),
        )

    def _actions_for(
        self, spec: ListenerSpec, raw: dict[str, Any] | None, home: dict[str, Any]
    ) -> list[dict[str, Any]] | None:
        """The default actions that make listener ``raw`` (None: a new one) front ``home``,
        or None when it does already.

        Fronting home means forwarding to home and to home's members with the weights the
        deployments gave them: kept when the listener fronts home already (anything else in
        the action is dropped), copied from the listeners that front home when the listener
        is new to it. A listener that carries another target group's members cannot change
        target group: its deployment groups would lose their traffic (Conflict naming
        ``target_group``)."""
        home_arn = str(home["TargetGroupArn"])
        if raw is not None:
            arns = list(forward_of(raw) or {})
            forward = read_forward(raw, target_group_tags(self.session, arns))
            mine = forward.of_home(spec.target_group, home_arn) if forward is not None else {}
            if forward is not None and mine:
                if home_arn not in mine:
                    mine = {home_arn: 0, **mine}
                if mine == dict(forward.weights):
                    return None
                if not any(mine.values()):
                    dropped = sorted(set(forward.homes) - {spec.target_group})
                    raise Conflict(
                        f"listener {spec.name}: {spec.target_group} and its deployment groups "
                        f"have weight 0; dropping {', '.join(dropped)} would leave no traffic "
                        "anywhere (set the weights first)",
                        field="target_group",
                    )
                return with_forward(raw, mine)
            groups = forward.groups() if forward is not None else {}
            if groups:
                carried = ", ".join(f"{g} (weight {w})" for g, w in sorted(groups.items()))
                raise Conflict(
                    f"listener {spec.name} carries the traffic of deployment groups {carried} "
                    f"through {'+'.join(forward.homes) if forward else '?'}; its target group "
                    f"cannot change to {spec.target_group} while they are attached (deploy "
                    f"behind {spec.target_group} on another listener first, then change this one)",
                    field="target_group",
                )
        others = [
            x
            for x in listeners_fronting(self.session, home)
            if raw is None or x["ListenerArn"] != raw["ListenerArn"]
        ]
        # The weights traffic reads (the first listener's), so that every listener agrees.
        weights = (forward_of(others[0]) if others else None) or {home_arn: 100}
        return [forward_action(weights)]

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
