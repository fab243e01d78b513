"""ELBv2 target groups: ensure (create or update in place), describe, register, health.

Klink names target groups; ARNs are looked up by name on each call rather than cached, so a
target group deleted and recreated (by infrastructure) is never addressed by a stale ARN.
Load balancers and listeners belong to infrastructure (``infra.py``); here ``frontend_port`` is
read from the listener that forwards to the target group and never written. Instance health is
what ELBv2 reports: Klink never probes an instance on AWS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from klink.errors import Conflict, InvalidInput, NotFound
from klink.providers.aws.convert import arn_resource_name, chunks, forward_of, tag_list, tags_of
from klink.providers.aws.session import AwsSession
from klink.providers.base import TargetGroup, TargetGroupSpec, TargetHealth

DELAY_ATTRIBUTE = "deregistration_delay.timeout_seconds"


def _health_check(spec: TargetGroupSpec) -> dict[str, Any]:
    return {
        "HealthCheckProtocol": spec.protocol,
        "HealthCheckPath": spec.health_check_path,
        "HealthCheckIntervalSeconds": spec.health_check_interval_seconds,
        # AWS requires the timeout to be shorter than the interval.
        "HealthCheckTimeoutSeconds": max(2, spec.health_check_interval_seconds - 1),
        "HealthyThresholdCount": spec.healthy_threshold,
        "UnhealthyThresholdCount": spec.unhealthy_threshold,
    }


class Targets:
    def __init__(self, session: AwsSession) -> None:
        self.session = session

    @property
    def _elb(self) -> Any:
        return self.session.client("elbv2")

    # Reading -------------------------------------------------------------------------------
    def _raw(self, name: str) -> dict[str, Any] | None:
        elb = self._elb

        def run() -> dict[str, Any] | None:
            found = elb.describe_target_groups(Names=[name])["TargetGroups"]
            return found[0] if found else None

        try:
            return self.session.call(f"describe target group {name}", run)
        except NotFound:
            return None

    def arn(self, name: str) -> str:
        raw = self._raw(name)
        if raw is None:
            raise NotFound(f"target group {name} not found", field="target_group")
        return str(raw["TargetGroupArn"])

    def _complete(self, raws: Sequence[Mapping[str, Any]]) -> list[TargetGroup]:
        """Add tags, the deregistration delay and the frontend port to described groups."""
        elb = self._elb

        def run() -> list[TargetGroup]:
            tags: dict[str, dict[str, str]] = {}
            arns = [r["TargetGroupArn"] for r in raws]
            for batch in chunks(arns, 20):
                for desc in elb.describe_tags(ResourceArns=list(batch))["TagDescriptions"]:
                    tags[desc["ResourceArn"]] = tags_of(desc.get("Tags"))
            ports: dict[str, int] = {}
            for lb_arn in sorted({lb for r in raws for lb in r.get("LoadBalancerArns", ())}):
                pages = elb.get_paginator("describe_listeners").paginate(LoadBalancerArn=lb_arn)
                try:
                    listeners = [x for page in pages for x in page["Listeners"]]
                except ClientError as exc:
                    # A load balancer deleted since its target group was described (a race on
                    # AWS; moto keeps the ARN for good): it has no listeners any more.
                    if exc.response.get("Error", {}).get("Code") == "LoadBalancerNotFound":
                        continue
                    raise
                for listener in listeners:
                    # Weighted (traffic.py) or plain: every target group it forwards to.
                    for tg_arn in forward_of(listener) or {}:
                        ports.setdefault(tg_arn, listener["Port"])
            out = []
            for r in raws:
                attrs = elb.describe_target_group_attributes(TargetGroupArn=r["TargetGroupArn"])
                values = {a["Key"]: a["Value"] for a in attrs["Attributes"]}
                out.append(
                    TargetGroup(
                        name=r["TargetGroupName"],
                        id=r["TargetGroupArn"],
                        port=int(r.get("Port", 0)),
                        protocol=r.get("Protocol", "HTTP"),
                        health_check_path=r.get("HealthCheckPath", "/"),
                        health_check_interval_seconds=int(r.get("HealthCheckIntervalSeconds", 30)),
                        healthy_threshold=int(r.get("HealthyThresholdCount", 5)),
                        unhealthy_threshold=int(r.get("UnhealthyThresholdCount", 2)),
                        deregistration_delay_seconds=int(values.get(DELAY_ATTRIBUTE, 300)),
                        vpc_id=r.get("VpcId"),
                        frontend_port=ports.get(r["TargetGroupArn"]),
                        load_balancers=tuple(r.get("LoadBalancerArns", ())),
                        tags=tags.get(r["TargetGroupArn"], {}),
                    )
                )
            return out

        return self.session.call("describe target groups", run)

    def describe(self, name: str) -> TargetGroup:
        raw = self._raw(name)
        if raw is None:
            raise NotFound(f"target group {name} not found", field="target_group")
        return self._complete([raw])[0]

    def all(self) -> list[TargetGroup]:
        elb = self._elb

        def run() -> list[dict[str, Any]]:
            pages = elb.get_paginator("describe_target_groups").paginate()
            return [raw for page in pages for raw in page["TargetGroups"]]

        raws = self.session.call("list target groups", run)
        return sorted(self._complete(raws), key=lambda t: t.name)

    def names_of(self, arns: Sequence[str]) -> dict[str, str]:
        """ARN → name, from the ARN itself (``…:targetgroup/NAME/id``)."""
        return {arn: arn_resource_name(arn, ":targetgroup/") for arn in arns}

    # Writing -------------------------------------------------------------------------------
    def ensure(self, spec: TargetGroupSpec) -> TargetGroup:
        if not spec.vpc_id:
            raise InvalidInput("an aws target group needs a vpc_id", field="vpc_id")
        elb = self._elb
        raw = self._raw(spec.name)
        if raw is None:
            kwargs: dict[str, Any] = {
                "Name": spec.name,
                "Protocol": spec.protocol,
                "Port": spec.port,
                "VpcId": spec.vpc_id,
                "TargetType": "instance",
                **_health_check(spec),
            }
            if spec.tags:
                kwargs["Tags"] = tag_list(spec.tags)
            created = self.session.call(
                f"create target group {spec.name}", lambda: elb.create_target_group(**kwargs)
            )
            arn = created["TargetGroups"][0]["TargetGroupArn"]
        else:
            arn = raw["TargetGroupArn"]
            fixed = {
                "port": ("Port", spec.port),
                "protocol": ("Protocol", spec.protocol),
                "vpc_id": ("VpcId", spec.vpc_id),
            }
            changed = [k for k, (key, v) in fixed.items() if raw.get(key) != v]
            if changed:
                raise Conflict(
                    f"target group {spec.name} exists with another {', '.join(changed)}; "
                    "those cannot change in place (delete it or use a new name)",
                    field=changed[0],
                )
            self.session.call(
                f"update target group {spec.name}",
                lambda: elb.modify_target_group(TargetGroupArn=arn, **_health_check(spec)),
            )
            if spec.tags:
                self.session.call(
                    f"tag target group {spec.name}",
                    lambda: elb.add_tags(ResourceArns=[arn], Tags=tag_list(spec.tags)),
                )
        delay = [{"Key": DELAY_ATTRIBUTE, "Value": str(spec.deregistration_delay_seconds)}]
        self.session.call(
            f"set deregistration delay of {spec.name}",
            lambda: elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=delay),
        )
        return self.describe(spec.name)

    def delete(self, name: str) -> None:
        raw = self._raw(name)
        if raw is None:
            return
        elb = self._elb
        with contextlib.suppress(NotFound):
            self.session.call(
                f"delete target group {name}",
                lambda: elb.delete_target_group(TargetGroupArn=raw["TargetGroupArn"]),
            )

    def register(self, name: str, instance_ids: Sequence[str]) -> None:
        arn, elb = self.arn(name), self._elb
        for batch in chunks(list(instance_ids), 100):
            targets = [{"Id": i} for i in batch]
            self.session.call(
                f"register instances with {name}",
                lambda t=targets: elb.register_targets(TargetGroupArn=arn, Targets=t),  # type: ignore[misc]
            )

    def deregister(self, name: str, instance_ids: Sequence[str]) -> None:
        arn, elb = self.arn(name), self._elb
        for batch in chunks(list(instance_ids), 100):
            targets = [{"Id": i} for i in batch]
            # AWS answers InvalidTarget for instances that no longer exist: nothing to drain.
            with contextlib.suppress(NotFound):
                self.session.call(
                    f"deregister instances from {name}",
                    lambda t=targets: elb.deregister_targets(TargetGroupArn=arn, Targets=t),  # type: ignore[misc]
                )

    def health(self, name: str) -> list[TargetHealth]:
        arn, elb = self.arn(name), self._elb
        answer = self.session.call(
            f"describe target health of {name}",
            lambda: elb.describe_target_health(TargetGroupArn=arn),
        )
        out = []
        for desc in answer["TargetHealthDescriptions"]:
            health = desc.get("TargetHealth", {})
            out.append(
                TargetHealth(
                    instance_id=desc["Target"]["Id"],
                    state=health.get("State", "unavailable"),
                    port=desc["Target"].get("Port"),
                    reason=health.get("Reason") or health.get("Description"),
                )
            )
        return sorted(out, key=lambda h: h.instance_id)
