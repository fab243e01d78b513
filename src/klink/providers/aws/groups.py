"""Auto Scaling groups: create, describe, list by exact name pattern, resize, suspend, delete.

A group is one deployment: its tags (propagated to instances) carry app, env, version, config
commit and who deployed it, and its launch template carries the image and the user-data, so the
previous state of an app+env is recovered from the cloud alone. ``list_groups`` pages through
every group and keeps the names that *fully* match the pattern, newest first.

Instances come from the group (lifecycle state, health) joined with EC2 (private IP, launch
time, image): the IP is reported, never connected to. Processes to suspend at creation are
suspended while the group is still empty, then the capacity is set, so nothing launches or
joins a load balancer before they are suspended.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from klink.errors import Conflict, InvalidInput, NotFound
from klink.providers.aws.convert import (
    MEMBER_PREFIX,
    arn_resource_name,
    chunks,
    newest_first,
    parse_time,
    tags_of,
)
from klink.providers.aws.session import AwsSession
from klink.providers.aws.targets import Targets
from klink.providers.base import PROCESSES, Group, GroupSpec, Instance


def check_processes(processes: Sequence[str]) -> list[str]:
    unknown = [p for p in processes if p not in PROCESSES]
    if unknown:
        raise InvalidInput(
            f"unknown process {unknown[0]!r}; processes: {', '.join(PROCESSES)}",
            field="processes",
        )
    return list(processes)


def group_tags(name: str, tags: Mapping[str, str]) -> list[dict[str, Any]]:
    merged = {"Name": name, **tags}
    return [
        {
            "ResourceId": name,
            "ResourceType": "auto-scaling-group",
            "Key": key,
            "Value": value,
            "PropagateAtLaunch": True,
        }
        for key, value in sorted(merged.items())
    ]


def group_of(raw: Mapping[str, Any], ec2_info: Mapping[str, Mapping[str, Any]]) -> Group:
    template = raw.get("LaunchTemplate") or {}
    if not template:
        mixed = raw.get("MixedInstancesPolicy") or {}
        template = mixed.get("LaunchTemplate", {}).get("LaunchTemplateSpecification", {})
    instances = []
    for inst in raw.get("Instances", ()):
        info = ec2_info.get(inst["InstanceId"], {})
        instances.append(
            Instance(
                id=inst["InstanceId"],
                lifecycle_state=inst.get("LifecycleState", "Pending"),
                health=inst.get("HealthStatus", "Healthy"),
                private_ip=info.get("PrivateIpAddress"),
                launched_at=parse_time(info.get("LaunchTime")),
                image_id=info.get("ImageId"),
                group=raw["AutoScalingGroupName"],
            )
        )
    subnets = tuple(s for s in (raw.get("VPCZoneIdentifier") or "").split(",") if s)
    return Group(
        name=raw["AutoScalingGroupName"],
        launch_template=template.get("LaunchTemplateName"),
        min_size=int(raw["MinSize"]),
        max_size=int(raw["MaxSize"]),
        desired_capacity=int(raw["DesiredCapacity"]),
        created_at=parse_time(raw.get("CreatedTime")),
        default_cooldown=int(raw.get("DefaultCooldown", 300)),
        health_check_type=raw.get("HealthCheckType", "EC2"),
        health_check_grace_period=int(raw.get("HealthCheckGracePeriod", 0)),
        subnets=subnets,
        termination_policies=tuple(raw.get("TerminationPolicies", ())),
        # A traffic member's own target group (``traffic.py``) is not one the group was
        # given: ``traffic()`` reports it, as the other providers do.
        target_groups=tuple(
            name
            for name in (
                arn_resource_name(arn, ":targetgroup/") for arn in raw.get("TargetGroupARNs", ())
            )
            if not name.startswith(MEMBER_PREFIX)
        ),
        suspended_processes=frozenset(p["ProcessName"] for p in raw.get("SuspendedProcesses", ())),
        tags=tags_of(raw.get("Tags")),
        instances=tuple(sorted(instances, key=lambda i: i.id)),
        status=raw.get("Status"),
    )


class Groups:
    def __init__(self, session: AwsSession, targets: Targets) -> None:
        self.session = session
        self.targets = targets

    @property
    def _asg(self) -> Any:
        return self.session.client("autoscaling")

    # Reading -------------------------------------------------------------------------------
    def _instance_info(self, instance_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """EC2's view of instances; a filter (not InstanceIds) so vanished ids are no error."""
        if not instance_ids:
            return {}
        ec2 = self.session.client("ec2")

        def run() -> dict[str, dict[str, Any]]:
            info: dict[str, dict[str, Any]] = {}
            for batch in chunks(sorted(set(instance_ids)), 200):
                pages = ec2.get_paginator("describe_instances").paginate(
                    Filters=[{"Name": "instance-id", "Values": list(batch)}]
                )
                for page in pages:
                    for reservation in page["Reservations"]:
                        for inst in reservation["Instances"]:
                            info[inst["InstanceId"]] = inst
            return info

        return self.session.call("describe instances", run)

    def _groups_of(self, raws: Sequence[Mapping[str, Any]]) -> list[Group]:
        ids = [i["InstanceId"] for raw in raws for i in raw.get("Instances", ())]
        info = self._instance_info(ids)
        return [group_of(raw, info) for raw in raws]

    def _raw(self, name: str) -> dict[str, Any] | None:
        asg = self._asg

        def run() -> dict[str, Any] | None:
            found = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
            groups = found["AutoScalingGroups"]
            return groups[0] if groups else None

        return self.session.call(f"describe group {name}", run)

    def describe(self, name: str) -> Group:
        raw = self._raw(name)
        if raw is None:
            raise NotFound(f"group {name} not found", field="group")
        return self._groups_of([raw])[0]

    def exists(self, name: str) -> bool:
        return self._raw(name) is not None

    def matching(self, pattern: str | None = None) -> list[Group]:
        try:
            regex = re.compile(pattern) if pattern is not None else None
        except re.error as exc:
            raise InvalidInput(f"pattern {pattern!r}: {exc}", field="pattern") from None
        asg = self._asg

        def run() -> list[dict[str, Any]]:
            pages = asg.get_paginator("describe_auto_scaling_groups").paginate(
                PaginationConfig={"PageSize": 100}
            )
            return [
                raw
                for page in pages
                for raw in page["AutoScalingGroups"]
                if regex is None or regex.fullmatch(raw["AutoScalingGroupName"])
            ]

        groups = self._groups_of(self.session.call("list groups", run))
        return sorted(groups, key=lambda g: (newest_first(g.created_at), g.name))

    # Writing -------------------------------------------------------------------------------
    def create(self, spec: GroupSpec) -> Group:
        if not spec.subnets:
            raise InvalidInput("an aws group needs at least one subnet", field="subnets")
        suspended = check_processes(spec.suspended_processes)
        if self.exists(spec.name):
            return self.describe(spec.name)
        arns = [self.targets.arn(name) for name in spec.target_groups]
        kwargs: dict[str, Any] = {
            "AutoScalingGroupName": spec.name,
            "LaunchTemplate": {"LaunchTemplateName": spec.launch_template, "Version": "$Default"},
            "MinSize": 0 if suspended else spec.min_size,
            "MaxSize": spec.max_size,
            "DesiredCapacity": 0 if suspended else spec.desired_capacity,
            "DefaultCooldown": spec.default_cooldown,
            "HealthCheckType": spec.health_check_type,
            "HealthCheckGracePeriod": spec.health_check_grace_period,
            "VPCZoneIdentifier": ",".join(spec.subnets),
            "Tags": group_tags(spec.name, spec.tags),
        }
        if spec.termination_policies:
            kwargs["TerminationPolicies"] = list(spec.termination_policies)
        if arns:
            kwargs["TargetGroupARNs"] = arns
        asg = self._asg
        try:
            self.session.call(
                f"create group {spec.name}", lambda: asg.create_auto_scaling_group(**kwargs)
            )
        except Conflict:
            return self.describe(spec.name)  # created meanwhile: idempotent on the name
        if suspended:
            self.suspend(spec.name, suspended)
            self.resize(
                spec.name,
                min_size=spec.min_size,
                max_size=spec.max_size,
                desired_capacity=spec.desired_capacity,
            )
        return self.describe(spec.name)

    def resize(self, name: str, *, min_size: int, max_size: int, desired_capacity: int) -> None:
        if not 0 <= min_size <= desired_capacity <= max_size:
            raise InvalidInput(
                f"sizes must satisfy 0 <= min ({min_size}) <= desired ({desired_capacity}) "
                f"<= max ({max_size})",
                field="desired_capacity",
            )
        asg = self._asg
        self.session.call(
            f"resize group {name}",
            lambda: asg.update_auto_scaling_group(
                AutoScalingGroupName=name,
                MinSize=min_size,
                MaxSize=max_size,
                DesiredCapacity=desired_capacity,
            ),
        )

    def suspend(self, name: str, processes: Sequence[str]) -> None:
        names, asg = check_processes(processes), self._asg
        self.session.call(
            f"suspend processes of {name}",
            lambda: asg.suspend_processes(AutoScalingGroupName=name, ScalingProcesses=names),
        )

    def resume(self, name: str, processes: Sequence[str]) -> None:
        names, asg = check_processes(processes), self._asg
        self.session.call(
            f"resume processes of {name}",
            lambda: asg.resume_processes(AutoScalingGroupName=name, ScalingProcesses=names),
        )

    def delete(self, name: str, *, force: bool = True) -> None:
        raw = self._raw(name)
        if raw is None or raw.get("Status") == "Delete in progress":
            return
        asg = self._asg
        with contextlib.suppress(NotFound):
            self.session.call(
                f"delete group {name}",
                lambda: asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=force),
            )

    def tag(self, name: str, tags: Mapping[str, str]) -> None:
        if not self.exists(name):
            raise NotFound(f"group {name} not found", field="group")
        asg = self._asg
        entries = [t for t in group_tags(name, tags) if t["Key"] in tags]
        self.session.call(f"tag group {name}", lambda: asg.create_or_update_tags(Tags=entries))
