"""Policies, alarms, scheduled actions, notifications, launch templates and network, via the
daemon; and the codec that carries the provider's dataclasses over its API."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from klink.errors import NotFound
from klink.providers import base
from klink.providers.local import codec
from klink.providers.local.provider import LocalProvider
from tests.local.conftest import group_with

pytestmark = pytest.mark.slow


def test_codec_round_trips_dataclasses() -> None:
    group = base.Group(
        name="a-b-v000",
        launch_template="lt",
        min_size=0,
        max_size=2,
        desired_capacity=1,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        subnets=("local",),
        suspended_processes=frozenset({"Launch", "Terminate"}),
        tags={"k": "v"},
        instances=(base.Instance(id="i-1", lifecycle_state="InService", health="Healthy"),),
    )
    assert codec.decode(codec.encode(group)) == group
    assert codec.decode(codec.encode([("a", 1), {"x": None}])) == [("a", 1), {"x": None}]


def test_policies_alarms_schedules_notifications(
    cloud: LocalProvider, hello_image: base.Image
) -> None:
    name = "hello-dev-v000"
    group_with(cloud, hello_image, name, 0)
    policy = cloud.put_scaling_policy(
        base.ScalingPolicy(name="up", group=name, scaling_adjustment=1, cooldown=60)
    )
    assert policy.id
    assert cloud.list_scaling_policies(name) == [policy]
    cloud.put_scaling_policy(base.ScalingPolicy(name="up", group=name, scaling_adjustment=2))
    assert [p.scaling_adjustment for p in cloud.list_scaling_policies(name)] == [2]
    alarm = base.Alarm(name="cpu", group=name, metric_name="CPUUtilization", threshold=80)
    cloud.put_alarm(alarm)
    assert cloud.list_alarms(name) == [alarm]
    action = base.ScheduledAction(name="night", group=name, recurrence="0 22 * * *")
    cloud.put_scheduled_action(action)
    assert cloud.list_scheduled_actions(name) == [action]
    note = base.NotificationConfig(group=name, topic="ops", types=("launch",))
    cloud.put_notification(note)
    assert cloud.list_notifications(name) == [note]

    cloud.delete_scaling_policy(name, "up")
    cloud.delete_alarms(name, ["cpu", "missing"])
    cloud.delete_scheduled_action(name, "night")
    cloud.delete_notification(name, "ops")
    cloud.delete_notification(name, "ops")
    assert cloud.list_scaling_policies(name) == []
    assert cloud.list_alarms(name) == []
    assert cloud.list_scheduled_actions(name) == []
    assert cloud.list_notifications(name) == []
    with pytest.raises(NotFound):
        cloud.put_alarm(base.Alarm(name="x", group="nope", metric_name="m", threshold=1))


def test_launch_templates_groups_listing_and_network(
    cloud: LocalProvider, hello_image: base.Image
) -> None:
    spec = base.LaunchTemplateSpec(
        name="lt", image_id=hello_image.id, instance_type="local", user_data="#cloud-config\n"
    )
    first = cloud.create_launch_template(spec)
    assert cloud.create_launch_template(spec) == first
    assert cloud.describe_launch_template("lt").user_data == "#cloud-config\n"
    with pytest.raises(NotFound):
        cloud.create_launch_template(
            base.LaunchTemplateSpec(
                name="x", image_id="img-000000000000", instance_type="l", user_data=""
            )
        )
    group_with(cloud, hello_image, "hello-dev-v001", 0)
    group_with(cloud, hello_image, "hello-dev-v002", 0)
    group_with(cloud, hello_image, "other-dev-v001", 0)
    assert [g.name for g in cloud.list_groups(r"hello-dev-v\d{3}")] == [
        "hello-dev-v002",
        "hello-dev-v001",
    ]
    cloud.tag_group("hello-dev-v001", {"klink:deployment": "d1"})
    assert cloud.describe_group("hello-dev-v001").tags == {"klink:deployment": "d1"}
    cloud.delete_launch_template("lt")
    cloud.delete_launch_template("lt")
    with pytest.raises(NotFound):
        cloud.describe_launch_template("lt")
    assert [s.id for s in cloud.subnets("private")] == ["local"]
    assert cloud.vpc_of_subnet("local") == "local"
    assert cloud.security_group_ids(["web"]) == {"web": "web"}
    assert cloud.list_images("hello") == [hello_image]
