"""A broken version stopped at the health gate while the old one serves, then undone.

Through ``klink serve`` and the local cloud: v1 serves behind HAProxy; v2's start command never
serves ``/healthcheck``, so its deployment fails at ``wait_instances_healthy``. A loopback load
through HAProxy over the whole attempt sees 0 failed requests and only v1. Undo removes v2's
group, v1 serves on, and the app is unlocked (a v3 deploys).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from klink.cli.loadgen import LoadGenerator
from klink.errors import NotFound
from klink.providers import base
from klink.providers.local.images import ImageStore
from klink.providers.local.provider import LocalProvider
from tests.e2e.platform import Platform, in_traffic, local_hello, push_config
from tests.local.conftest import get_json, make_image

pytestmark = pytest.mark.slow


def broken_image(home: Path, tmp: Path) -> base.Image:
    """Starts a process that never listens: no health check can pass."""
    staging = tmp / "stage-broken"
    (staging / "app").mkdir(parents=True)
    return ImageStore(home).create(
        staging,
        name="hello-2.0",
        start_command="exec sleep 60",
        tags={base.TAG_APP: "hello", base.TAG_VERSION: "2.0"},
    )


def test_broken_version_stopped_at_the_health_gate_then_undone(
    platform: Platform, cloud: LocalProvider, tmp_path: Path
) -> None:
    params = {"desiredCapacity": 2, "max": 2, "instanceHealthyAttempts": 4}
    balancer = local_hello(platform, params)
    url = f"{balancer}/healthcheck"
    v1 = make_image(platform.home, "1.0", tmp_path)
    first = platform.wait(platform.deploy("hello", "dev", v1.id))
    assert first["status"] == "completed", first["error"]

    broken = broken_image(platform.home, tmp_path)
    with LoadGenerator(url, threads=4, max_seconds=90) as load:
        second = platform.wait(platform.deploy("hello", "dev", broken.id, "broken"))
        time.sleep(0.3)
    assert second["status"] == "failed", second
    assert second["current"] == "wait_instances_healthy", second
    assert load.result is not None
    print(f"health gate under load: {load.result.sent} requests, {load.result.failed} failed")
    assert load.result.sent > 100
    assert load.result.failed == 0, load.result.errors
    assert set(load.result.versions) == {"1.0"}
    # The broken group exists, out of traffic; v1's instances alone are registered.
    assert sorted(g.name for g in cloud.list_groups(r"hello-dev-v\d{3}")) == [
        "hello-dev-v000",
        "hello-dev-v001",
    ]
    v1_ids = {i.id for i in cloud.describe_group("hello-dev-v000").instances}
    # v1 alone takes traffic (weight 100, every instance healthy); the broken group none.
    assert in_traffic(cloud, "hello") == {"hello-dev-v000": (100, len(v1_ids), len(v1_ids))}
    # Locked until undo: a new deployment is refused.
    with platform.client() as http:
        refused = http.post("/deploy/hello/dev", json={"image": v1.id, "message": "x"})
    assert refused.status_code == 409, refused.text

    with LoadGenerator(url, threads=4, max_seconds=90) as load:
        platform.call("POST", "/deploy/hello/dev/undo", json={"message": "v2 is broken"})
        undone = platform.wait(str(second["id"]))
    assert undone["status"] == "completed", undone["error"]
    assert undone["undo"] is True
    assert load.result is not None
    assert load.result.failed == 0, load.result.errors
    assert [g.name for g in cloud.list_groups(r"hello-dev-v\d{3}")] == ["hello-dev-v000"]
    with pytest.raises(NotFound):
        cloud.describe_group("hello-dev-v001")
    assert get_json(url)["version"] == "1.0"

    # Unlocked: the next version deploys.
    push_config(platform, "hello", "dev", {"README": "v3\n"})
    v3 = make_image(platform.home, "3.0", tmp_path)
    third = platform.wait(platform.deploy("hello", "dev", v3.id))
    assert third["status"] == "completed", third["error"]
    assert get_json(url)["version"] == "3.0"
