"""Scaling policies, alarms ({group}-{name}, dimension the group), scheduled actions and
notifications: create, list for a group, delete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from klink.errors import InvalidInput, NotFound, ProviderError
from klink.providers.aws import AwsProvider
from klink.providers.base import (
    Alarm,
    GroupSpec,
    LaunchTemplateSpec,
    NotificationConfig,
    ScalingPolicy,
    ScheduledAction,
)
from tests.aws.faults import CallRecorder

pytestmark = pytest.mark.slow

GROUP = "search-prod-v001"


@pytest.fixture
def group(provider: AwsProvider, image: str, subnet: dict[str, str]) -> str:
    for name in (GROUP, "search-prod-v0011"):
        template = f"{name}-20260102030405"
        provider.create_launch_template(LaunchTemplateSpec(template, image, "t3.micro", ""))
        provider.create_group(GroupSpec(name, template, 0, 4, 0, subnets=(subnet["id"],)))
    return GROUP


def test_scaling_policies(provider: AwsProvider, group: str) -> None:
    up = provider.put_scaling_policy(
        ScalingPolicy("scale-up", group, scaling_adjustment=2, cooldown=60)
    )
    assert up.id is not None
    assert up.id.startswith("arn:aws:autoscaling:")
    cpu = provider.put_scaling_policy(
        ScalingPolicy(
            "cpu",
            group,
            policy_type="TargetTrackingScaling",
            adjustment_type=None,
            target_value=55.0,
            predefined_metric="ASGAverageCPUUtilization",
        )
    )
    assert cpu.target_value == 55.0
    provider.put_scaling_policy(ScalingPolicy("other", "search-prod-v0011", scaling_adjustment=1))
    listed = provider.list_scaling_policies(group)
    assert [p.name for p in listed] == ["cpu", "scale-up"]
    assert listed[1].scaling_adjustment == 2
    assert listed[1].cooldown == 60
    assert listed[1].adjustment_type == "ChangeInCapacity"
    assert listed[0].predefined_metric == "ASGAverageCPUUtilization"
    provider.delete_scaling_policy(group, "cpu")
    provider.delete_scaling_policy(group, "cpu")  # idempotent
    assert [p.name for p in provider.list_scaling_policies(group)] == ["scale-up"]
    with pytest.raises(InvalidInput) as caught:
        provider.put_scaling_policy(ScalingPolicy("bad", group))
    assert caught.value.field == "scaling_adjustment"


def test_alarms_are_named_after_the_group_with_the_group_as_dimension(
    provider: AwsProvider, group: str, moto: str
) -> None:
    provider.put_scaling_policy(ScalingPolicy("scale-up", group, scaling_adjustment=1))
    alarm = Alarm(
        "cpu-high",
        group,
        metric_name="CPUUtilization",
        threshold=80.0,
        period=120,
        evaluation_periods=2,
        policies=("scale-up",),
    )
    provider.put_alarm(alarm)
    # The group whose name extends this one's: its alarm shares the name prefix.
    provider.put_alarm(Alarm("high", "search-prod-v0011", "CPUUtilization", 90.0))
    assert provider.list_alarms(group) == [alarm]
    assert [a.name for a in provider.list_alarms("search-prod-v0011")] == ["high"]

    import boto3

    cloudwatch = boto3.client("cloudwatch", endpoint_url=moto, region_name="us-east-1")
    raw = cloudwatch.describe_alarms(AlarmNames=["search-prod-v001-cpu-high"])["MetricAlarms"]
    assert raw[0]["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": group}]
    assert raw[0]["AlarmActions"][0].endswith(":policyName/scale-up")

    provider.delete_alarms(group, ["cpu-high", "never-made"])
    assert provider.list_alarms(group) == []
    assert len(provider.list_alarms("search-prod-v0011")) == 1
    with pytest.raises(NotFound) as caught:
        provider.put_alarm(Alarm("x", group, "CPUUtilization", 1.0, policies=("missing",)))
    assert caught.value.field == "policies"


def test_scheduled_actions(provider: AwsProvider, group: str) -> None:
    nightly = ScheduledAction("nightly", group, recurrence="0 22 * * *", desired_capacity=1)
    start = datetime(2030, 1, 1, 6, 0, tzinfo=UTC)
    morning = ScheduledAction("morning", group, start_time=start, min_size=2, max_size=4)
    provider.put_scheduled_action(nightly)
    provider.put_scheduled_action(morning)
    listed = provider.list_scheduled_actions(group)
    assert [a.name for a in listed] == ["morning", "nightly"]
    assert listed[1].recurrence == "0 22 * * *"
    assert listed[1].desired_capacity == 1
    assert listed[0].start_time == start
    assert (listed[0].min_size, listed[0].max_size) == (2, 4)
    assert provider.list_scheduled_actions("search-prod-v0011") == []
    provider.delete_scheduled_action(group, "nightly")
    provider.delete_scheduled_action(group, "nightly")  # idempotent
    assert [a.name for a in provider.list_scheduled_actions(group)] == ["morning"]


def test_notifications_send_the_right_request_but_moto_does_not_implement_them(
    make_provider: Any, group: str
) -> None:
    """moto's gap: PutNotificationConfiguration & co. answer 500 (not implemented). The test
    checks the request Klink sends and that the failure arrives as a clean Klink error."""
    provider = make_provider(aws_retries={"max_attempts": 1, "backoff_attempts": 1})
    recorder = CallRecorder().attach(provider.session)
    topic = "arn:aws:sns:us-east-1:123456789012:deployments"
    with pytest.raises(ProviderError) as caught:
        provider.put_notification(NotificationConfig(group, topic))
    assert caught.value.message.startswith("put notification of search-prod-v001")
    assert "\n" not in caught.value.message  # one line, not moto's HTML page
    name, params = recorder.requests[-1]
    assert name == "PutNotificationConfiguration"
    assert params["AutoScalingGroupName"] == group
    assert params["TopicARN"] == topic
    assert "autoscaling:EC2_INSTANCE_LAUNCH" in params["NotificationTypes"]
    assert "autoscaling:EC2_INSTANCE_TERMINATE" in params["NotificationTypes"]
    with pytest.raises(ProviderError):
        provider.list_notifications(group)
    assert recorder.requests[-1] == (
        "DescribeNotificationConfigurations",
        {"AutoScalingGroupNames": [group]},
    )
    with pytest.raises(ProviderError):
        provider.delete_notification(group, topic)
    assert recorder.requests[-1] == (
        "DeleteNotificationConfiguration",
        {"AutoScalingGroupName": group, "TopicARN": topic},
    )
