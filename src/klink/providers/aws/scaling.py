"""What scales a group: scaling policies, CloudWatch alarms, scheduled actions, notifications.

Everything hangs off one group and is listed per group (paginated). Alarms are named
``{group}-{name}`` with the dimension ``AutoScalingGroupName={group}``; ``list_alarms`` keeps
only alarms with that dimension, so a group whose name is a prefix of another's never sees the
other's alarms. An alarm triggers scaling policies named by their short names; their ARNs are
resolved here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from klink.errors import InvalidInput, NotFound
from klink.providers.aws.convert import arn_resource_name, parse_time
from klink.providers.aws.session import AwsSession
from klink.providers.base import Alarm, NotificationConfig, ScalingPolicy, ScheduledAction

DIMENSION = "AutoScalingGroupName"
NOTIFICATION_TYPES = (
    "autoscaling:EC2_INSTANCE_LAUNCH",
    "autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
    "autoscaling:EC2_INSTANCE_TERMINATE",
    "autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
)


def policy_request(policy: ScalingPolicy) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "AutoScalingGroupName": policy.group,
        "PolicyName": policy.name,
        "PolicyType": policy.policy_type,
    }
    if policy.policy_type == "TargetTrackingScaling":
        if policy.target_value is None or not policy.predefined_metric:
            raise InvalidInput(
                "a target tracking policy needs target_value and predefined_metric",
                field="target_value",
            )
        kwargs["TargetTrackingConfiguration"] = {
            "PredefinedMetricSpecification": {"PredefinedMetricType": policy.predefined_metric},
            "TargetValue": policy.target_value,
        }
        return kwargs
    if policy.scaling_adjustment is None:
        raise InvalidInput(
            f"a {policy.policy_type} policy needs scaling_adjustment", field="scaling_adjustment"
        )
    kwargs["AdjustmentType"] = policy.adjustment_type or "ChangeInCapacity"
    if policy.policy_type == "StepScaling":
        kwargs["StepAdjustments"] = [
            {"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": policy.scaling_adjustment}
        ]
    elif policy.policy_type == "SimpleScaling":
        kwargs["ScalingAdjustment"] = policy.scaling_adjustment
        if policy.cooldown is not None:
            kwargs["Cooldown"] = policy.cooldown
    else:
        raise InvalidInput(f"unknown policy type {policy.policy_type!r}", field="policy_type")
    return kwargs


def policy_of(raw: Mapping[str, Any]) -> ScalingPolicy:
    tracking = raw.get("TargetTrackingConfiguration") or {}
    steps = raw.get("StepAdjustments") or []
    adjustment = raw.get("ScalingAdjustment")
    if adjustment is None and steps:
        adjustment = steps[0].get("ScalingAdjustment")
    return ScalingPolicy(
        name=raw["PolicyName"],
        group=raw["AutoScalingGroupName"],
        policy_type=raw.get("PolicyType", "SimpleScaling"),
        adjustment_type=raw.get("AdjustmentType"),
        scaling_adjustment=adjustment,
        cooldown=raw.get("Cooldown"),
        target_value=tracking.get("TargetValue"),
        predefined_metric=(tracking.get("PredefinedMetricSpecification") or {}).get(
            "PredefinedMetricType"
        ),
        id=raw.get("PolicyARN"),
    )


class Scaling:
    def __init__(self, session: AwsSession) -> None:
        self.session = session

    @property
    def _asg(self) -> Any:
        return self.session.client("autoscaling")

    # Policies ------------------------------------------------------------------------------
    def _policies(self, group: str, names: Sequence[str] = ()) -> list[dict[str, Any]]:
        asg = self._asg

        def run() -> list[dict[str, Any]]:
            kwargs: dict[str, Any] = {"AutoScalingGroupName": group}
            if names:
                kwargs["PolicyNames"] = list(names)
            pages = asg.get_paginator("describe_policies").paginate(**kwargs)
            return [raw for page in pages for raw in page["ScalingPolicies"]]

        return self.session.call(f"list scaling policies of {group}", run)

    def put_policy(self, policy: ScalingPolicy) -> ScalingPolicy:
        kwargs, asg = policy_request(policy), self._asg
        answer = self.session.call(
            f"put scaling policy {policy.name} of {policy.group}",
            lambda: asg.put_scaling_policy(**kwargs),
        )
        found = list(self._policies(policy.group, [policy.name]))
        if found:
            return policy_of(found[0])
        return ScalingPolicy(**{**policy.__dict__, "id": answer.get("PolicyARN")})

    def policies(self, group: str) -> list[ScalingPolicy]:
        return sorted((policy_of(raw) for raw in self._policies(group)), key=lambda p: p.name)

    def delete_policy(self, group: str, name: str) -> None:
        asg = self._asg
        with contextlib.suppress(NotFound):
            self.session.call(
                f"delete scaling policy {name} of {group}",
                lambda: asg.delete_policy(AutoScalingGroupName=group, PolicyName=name),
            )

    # Alarms --------------------------------------------------------------------------------
    def put_alarm(self, alarm: Alarm) -> None:
        arns: list[str] = []
        if alarm.policies:
            by_name = {p["PolicyName"]: p["PolicyARN"] for p in self._policies(alarm.group)}
            missing = [n for n in alarm.policies if n not in by_name]
            if missing:
                raise NotFound(
                    f"scaling policy {missing[0]} of group {alarm.group} not found",
                    field="policies",
                )
            arns = [by_name[n] for n in alarm.policies]
        cloudwatch = self.session.client("cloudwatch")
        self.session.call(
            f"put alarm {alarm.full_name}",
            lambda: cloudwatch.put_metric_alarm(
                AlarmName=alarm.full_name,
                MetricName=alarm.metric_name,
                Namespace=alarm.namespace,
                Statistic=alarm.statistic,
                Period=alarm.period,
                EvaluationPeriods=alarm.evaluation_periods,
                Threshold=alarm.threshold,
                ComparisonOperator=alarm.comparison,
                Dimensions=[{"Name": DIMENSION, "Value": alarm.group}],
                AlarmActions=arns,
            ),
        )

    def alarms(self, group: str) -> list[Alarm]:
        cloudwatch = self.session.client("cloudwatch")
        prefix = f"{group}-"

        def run() -> list[dict[str, Any]]:
            pages = cloudwatch.get_paginator("describe_alarms").paginate(
                AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm"]
            )
            return [raw for page in pages for raw in page.get("MetricAlarms", ())]

        out = []
        for raw in self.session.call(f"list alarms of {group}", run):
            dims = {d["Name"]: d["Value"] for d in raw.get("Dimensions", ())}
            if dims.get(DIMENSION) != group or not raw["AlarmName"].startswith(prefix):
                continue
            out.append(
                Alarm(
                    name=raw["AlarmName"][len(prefix) :],
                    group=group,
                    metric_name=raw["MetricName"],
                    threshold=float(raw["Threshold"]),
                    comparison=raw["ComparisonOperator"],
                    namespace=raw["Namespace"],
                    statistic=raw.get("Statistic", "Average"),
                    period=int(raw["Period"]),
                    evaluation_periods=int(raw["EvaluationPeriods"]),
                    policies=tuple(
                        arn_resource_name(arn, ":policyName/")
                        for arn in raw.get("AlarmActions", ())
                        if ":policyName/" in arn
                    ),
                )
            )
        return sorted(out, key=lambda a: a.name)

    def delete_alarms(self, group: str, names: Sequence[str]) -> None:
        if not names:
            return
        cloudwatch = self.session.client("cloudwatch")
        full = [f"{group}-{name}" for name in names]
        for start in range(0, len(full), 100):
            batch = full[start : start + 100]
            self.session.call(
                f"delete alarms of {group}",
                lambda b=batch: cloudwatch.delete_alarms(AlarmNames=b),  # type: ignore[misc]
            )

    # Scheduled actions ---------------------------------------------------------------------
    def put_scheduled(self, action: ScheduledAction) -> None:
        kwargs: dict[str, Any] = {
            "AutoScalingGroupName": action.group,
            "ScheduledActionName": action.name,
        }
        optional = {
            "Recurrence": action.recurrence,
            "StartTime": action.start_time,
            "MinSize": action.min_size,
            "MaxSize": action.max_size,
            "DesiredCapacity": action.desired_capacity,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        asg = self._asg
        self.session.call(
            f"put scheduled action {action.name} of {action.group}",
            lambda: asg.put_scheduled_update_group_action(**kwargs),
        )

    def scheduled(self, group: str) -> list[ScheduledAction]:
        asg = self._asg

        def run() -> list[dict[str, Any]]:
            pages = asg.get_paginator("describe_scheduled_actions").paginate(
                AutoScalingGroupName=group
            )
            return [raw for page in pages for raw in page["ScheduledUpdateGroupActions"]]

        return sorted(
            (
                ScheduledAction(
                    name=raw["ScheduledActionName"],
                    group=raw["AutoScalingGroupName"],
                    recurrence=raw.get("Recurrence"),
                    start_time=parse_time(raw.get("StartTime")),
                    min_size=raw.get("MinSize"),
                    max_size=raw.get("MaxSize"),
                    desired_capacity=raw.get("DesiredCapacity"),
                )
                for raw in self.session.call(f"list scheduled actions of {group}", run)
            ),
            key=lambda a: a.name,
        )

    def delete_scheduled(self, group: str, name: str) -> None:
        asg = self._asg
        with contextlib.suppress(NotFound):
            self.session.call(
                f"delete scheduled action {name} of {group}",
                lambda: asg.delete_scheduled_action(
                    AutoScalingGroupName=group, ScheduledActionName=name
                ),
            )

    # Notifications -------------------------------------------------------------------------
    def put_notification(self, config: NotificationConfig) -> None:
        asg = self._asg
        types = list(config.types or NOTIFICATION_TYPES)
        self.session.call(
            f"put notification of {config.group} to {config.topic}",
            lambda: asg.put_notification_configuration(
                AutoScalingGroupName=config.group, TopicARN=config.topic, NotificationTypes=types
            ),
        )

    def notifications(self, group: str) -> list[NotificationConfig]:
        asg = self._asg

        def run() -> list[dict[str, Any]]:
            pages = asg.get_paginator("describe_notification_configurations").paginate(
                AutoScalingGroupNames=[group]
            )
            return [raw for page in pages for raw in page["NotificationConfigurations"]]

        by_topic: dict[str, list[str]] = {}
        for raw in self.session.call(f"list notifications of {group}", run):
            by_topic.setdefault(raw["TopicARN"], []).append(raw["NotificationType"])
        return [
            NotificationConfig(group=group, topic=topic, types=tuple(sorted(types)))
            for topic, types in sorted(by_topic.items())
        ]

    def delete_notification(self, group: str, topic: str) -> None:
        asg = self._asg
        with contextlib.suppress(NotFound):
            self.session.call(
                f"delete notification of {group} to {topic}",
                lambda: asg.delete_notification_configuration(
                    AutoScalingGroupName=group, TopicARN=topic
                ),
            )
