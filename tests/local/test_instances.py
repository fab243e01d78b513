"""Instances and groups on the local cloud: real processes on their own loopback addresses."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from klink.errors import InvalidInput, NotFound
from klink.providers import base
from klink.providers.local.provider import LocalProvider
from tests.local.conftest import group_with, in_service, serving, try_get_json, wait_for

pytestmark = pytest.mark.slow


def test_instance_sees_written_files_and_environment(
    cloud: LocalProvider, hello_image: base.Image, home: Path
) -> None:
    _group, port = group_with(cloud, hello_image, "hello-dev-v000", 1)
    [instance] = wait_for(lambda: in_service(cloud, "hello-dev-v000", 1))
    assert instance.private_ip is not None
    assert instance.private_ip.startswith("127.")
    assert instance.private_ip != "127.0.0.1"
    [body] = wait_for(lambda: serving([instance], port))
    # write_files reached the app, profile.d exports reached its environment.
    assert body == {"app": "hello", "version": "1.0", "properties": {"service.port": str(port)}}
    root = home / "local" / "instances" / instance.id / "root"
    assert (root / "runcmd.out").read_text() == "ran\n"
    # The image itself is untouched: the instance replaced its hard-linked file.
    image_props = home / "local" / "images" / hello_image.id / "root" / "etc" / "hello.properties"
    assert image_props.read_text() == "service.port=1\n"
    assert f"listening on {instance.private_ip}:{port}" in wait_for(
        lambda: cloud.instance_log(instance.id)
    )


def test_killed_instance_is_replaced_unless_launch_suspended(
    cloud: LocalProvider, hello_image: base.Image, home: Path
) -> None:
    _group, port = group_with(cloud, hello_image, "hello-dev-v001", 1)
    [first] = wait_for(lambda: in_service(cloud, "hello-dev-v001", 1))
    os.kill(_pid_of(home, first.id), signal.SIGKILL)
    [second] = wait_for(
        lambda: [i for i in in_service(cloud, "hello-dev-v001", 1) if i.id != first.id]
    )
    assert second.private_ip is not None
    wait_for(lambda: serving([second], port))

    cloud.suspend_processes("hello-dev-v001", ["Launch"])
    os.kill(_pid_of(home, second.id), signal.SIGKILL)
    wait_for(lambda: not cloud.describe_group("hello-dev-v001").instances)
    time.sleep(0.5)  # several reconcile steps: nothing may be launched while suspended
    assert cloud.describe_group("hello-dev-v001").instances == ()
    cloud.resume_processes("hello-dev-v001", ["Launch"])
    wait_for(lambda: in_service(cloud, "hello-dev-v001", 1))


def test_terminate_suspended_keeps_dead_instance_unhealthy(
    cloud: LocalProvider, hello_image: base.Image, home: Path
) -> None:
    group_with(cloud, hello_image, "hello-dev-v002", 1, suspended_processes=("Terminate",))
    [first] = wait_for(lambda: in_service(cloud, "hello-dev-v002", 1))
    os.kill(_pid_of(home, first.id), signal.SIGKILL)
    wait_for(lambda: cloud.describe_group("hello-dev-v002").instances[0].health == "Unhealthy")
    assert [i.id for i in cloud.describe_group("hello-dev-v002").instances] == [first.id]


def test_resize_and_delete_group(cloud: LocalProvider, hello_image: base.Image) -> None:
    _group, port = group_with(cloud, hello_image, "hello-dev-v003", 2)
    instances = wait_for(lambda: in_service(cloud, "hello-dev-v003", 2))
    assert len({i.private_ip for i in instances}) == 2
    wait_for(lambda: serving(instances, port))
    cloud.resize_group("hello-dev-v003", min_size=0, max_size=3, desired_capacity=1)
    [kept] = wait_for(lambda: in_service(cloud, "hello-dev-v003", 1))
    assert kept.id in {i.id for i in instances}
    cloud.delete_group("hello-dev-v003")
    assert cloud.describe_group("hello-dev-v003").status == "Delete in progress"
    wait_for(lambda: not cloud.group_exists("hello-dev-v003"))
    assert try_get_json(f"http://{kept.private_ip}:{port}/healthcheck") is None
    with pytest.raises(NotFound):
        cloud.describe_group("hello-dev-v003")
    cloud.delete_group("hello-dev-v003")  # idempotent


def test_bad_input_names_the_field(cloud: LocalProvider, hello_image: base.Image) -> None:
    with pytest.raises(NotFound) as missing:
        cloud.describe_launch_template("nope")
    assert missing.value.field == "launch_template"
    group_with(cloud, hello_image, "hello-dev-v004", 0)
    with pytest.raises(InvalidInput) as bad:
        cloud.resize_group("hello-dev-v004", min_size=0, max_size=1, desired_capacity=2)
    assert bad.value.field == "desired_capacity"
    with pytest.raises(InvalidInput) as unknown:
        cloud.suspend_processes("hello-dev-v004", ["Lunch"])
    assert unknown.value.field == "processes"
    with pytest.raises(InvalidInput) as no_port:
        cloud.ensure_target_group(base.TargetGroupSpec(name="tg", port=80))
    assert no_port.value.field == "frontend_port"


def _pid_of(home: Path, instance_id: str) -> int:
    import json

    state = json.loads((home / "local" / "state.json").read_text())
    pid: int = state["instances"][instance_id]["pid"]
    return pid


def test_group_of_eight_starts_in_parallel(cloud: LocalProvider, hello_image: base.Image) -> None:
    from klink.providers.local.timing import time_group_launch
    from tests.conftest import free_port
    from tests.local.conftest import user_data

    port = free_port()
    cloud.create_launch_template(
        base.LaunchTemplateSpec(
            name="lt", image_id=hello_image.id, instance_type="local", user_data=user_data(port)
        )
    )
    one = time_group_launch(cloud, "hello-dev-v010", "lt", 1, port)
    eight = time_group_launch(cloud, "hello-dev-v011", "lt", 8, port)
    print(f"group of 1: {one:.2f}s, group of 8: {eight:.2f}s, ratio {eight / one:.1f}")
    # Sequential launches would take about 8x; the figure itself is measured in bench/.
    assert eight < 5 * one + 1.0
    ips = {i.private_ip for i in cloud.describe_group("hello-dev-v011").instances}
    assert len(ips) == 8
