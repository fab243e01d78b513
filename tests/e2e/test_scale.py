"""A red-black deploy of 8 instances over 8 on the local provider, through ``klink serve``.

Every new instance is in service and registered with HAProxy and healthy there, traffic reaches
the new version only, and the old group is retired: its group, launch template and processes
are gone.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from klink.errors import NotFound
from klink.providers import base
from klink.providers.local.provider import LocalProvider
from tests.e2e.platform import Platform, free_port, in_traffic, local_hello
from tests.local.conftest import get_json, make_image

pytestmark = pytest.mark.slow


def _listening(ip: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((ip, port)) == 0


def test_eight_instances_replace_eight(
    platform: Platform, cloud: LocalProvider, tmp_path: Path
) -> None:
    port = free_port()
    balancer = local_hello(platform, {"desiredCapacity": 8, "min": 8, "max": 8}, port=port)
    v1 = make_image(platform.home, "1.0", tmp_path)
    v2 = make_image(platform.home, "2.0", tmp_path)

    first = platform.wait(platform.deploy("hello", "dev", v1.id), timeout=120)
    assert first["status"] == "completed", first["error"]
    old = cloud.describe_group("hello-dev-v000")
    old_ids = {i.id for i in old.instances}
    assert len(old_ids) == 8
    old_ips = {str(i.private_ip) for i in old.instances}

    second = platform.wait(platform.deploy("hello", "dev", v2.id), timeout=120)
    assert second["status"] == "completed", second["error"]

    groups = cloud.list_groups(r"hello-dev-v\d{3}")
    assert [g.name for g in groups] == ["hello-dev-v001"]
    new = groups[0]
    assert len(new.instances) == 8
    assert {i.lifecycle_state for i in new.instances} == {base.IN_SERVICE}
    assert in_traffic(cloud, "hello") == {"hello-dev-v001": (100, 8, 8)}
    for instance in new.instances:
        answer = get_json(f"http://{instance.private_ip}:{port}/healthcheck")
        assert answer["version"] == "2.0"
    assert {get_json(f"{balancer}/healthcheck")["version"] for _ in range(16)} == {"2.0"}
    with pytest.raises(NotFound):
        cloud.describe_launch_template(str(old.launch_template))
    with pytest.raises(NotFound):
        cloud.describe_group("hello-dev-v000")
    # The old instances' processes are gone: nothing serves on their addresses any more.
    reused = {str(i.private_ip) for i in new.instances}
    assert [ip for ip in sorted(old_ips - reused) if _listening(ip, port)] == []
