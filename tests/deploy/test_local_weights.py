"""Traffic by weight end to end on the local provider: real processes, real HAProxy, real HTTP.

A rolling deployment of 3 steps (10, 50, 100, each paused) under a loopback load: 0 failed
requests, and at each step the share of answers from the new version, counted, within 5 points
of its weight. Then an undo at each step under load: 0 failed requests, every answer from the
old version afterwards, and the traffic moved back by the undo's first action.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from klink.cli.loadgen import LoadGenerator
from klink.providers import base
from klink.providers.local.provider import LocalProvider
from tests.conftest import free_port
from tests.deploy.conftest import World
from tests.deploy.test_local_e2e import cloud, run
from tests.local.conftest import get_json, make_image

pytestmark = pytest.mark.slow
__all__ = ["cloud"]  # the fixture, shared with test_local_e2e

STEPS = (10, 50, 100)
PARAMS = {
    "strategy": "rolling",
    "rolling": {"steps": [{"weight": w, "pause": True} for w in STEPS]},
    "keepWarmSeconds": 3,
    "healthCheckIntervalSeconds": 0.5,
    "targetGroups": ["hello-dev"],
}


def share_of(url: str, version: str, seconds: float = 1.5) -> tuple[float, int, int]:
    """(share of answers from ``version``, answers, failed) over ``seconds`` of load."""
    with LoadGenerator(url, threads=2, max_seconds=30) as load:
        time.sleep(seconds)
    result = load.result
    assert result is not None
    answered = sum(result.versions.values())
    return result.versions.get(version, 0) / max(1, answered), answered, result.failed


def test_rolling_steps_and_undo_at_each_step_under_load(
    world: World, cloud: LocalProvider, tmp_path: Path
) -> None:
    port, frontend = free_port(), free_port()
    world.app("hello", "dev")
    world.config("hello", "dev", params=PARAMS, props={"service.port": port})
    cloud.ensure_target_group(
        base.TargetGroupSpec(
            name="hello-dev",
            port=port,
            health_check_interval_seconds=1,
            healthy_threshold=1,
            unhealthy_threshold=2,
            deregistration_delay_seconds=1,
            frontend_port=frontend,
        )
    )
    url = f"http://127.0.0.1:{frontend}/healthcheck"
    images = {v: make_image(world.home, v, tmp_path) for v in ("1.0", "2.0", "3.0", "4.0", "5.0")}
    first = world.deploy(images["1.0"].id, app="hello", env="dev")
    assert run(world, first)["status"] == "completed"  # a first rolling deploy: one shift
    assert get_json(url)["version"] == "1.0"

    # The rolling deployment, paused at each step, under a load that runs throughout.
    with LoadGenerator(url, threads=2, max_seconds=300) as background:
        second = world.deploy(images["2.0"].id, app="hello", env="dev")
        for weight in STEPS:
            d = run(world, second)
            assert d["status"] == "paused", d["error"]
            share, answered, failed = share_of(url, "2.0")
            print(f"step {weight}%: {share:.1%} of {answered} answers from 2.0")
            assert failed == 0
            assert answered > 50
            assert abs(share * 100 - weight) <= 5, (weight, share)
            world.ok("POST", "/deploy/hello/dev/resume")
        done = run(world, second)
    assert done["status"] == "completed", done["error"]
    assert background.result is not None
    assert background.result.failed == 0, background.result.errors
    assert set(background.result.versions) == {"1.0", "2.0"}
    assert [g.name for g in cloud.list_groups(r"hello-dev-v\d{3}")] == ["hello-dev-v001"]

    # An undo at each step, under load: all traffic back on 2.0 in one call, 0 failed.
    for step_number, version in enumerate(("3.0", "4.0", "5.0")):
        deployment_id = world.deploy(images[version].id, app="hello", env="dev")
        for _ in range(step_number + 1):
            paused = run(world, deployment_id)
            assert paused["status"] == "paused", paused["error"]
            if _ < step_number:
                world.ok("POST", "/deploy/hello/dev/resume")
        with LoadGenerator(url, threads=2, max_seconds=120) as load:
            world.ok("POST", "/deploy/hello/dev/undo", json={"message": f"undo at {version}"})
            undone = run(world, deployment_id)
            time.sleep(0.3)
        assert undone["status"] == "completed", undone["error"]
        assert load.result is not None
        assert load.result.failed == 0, load.result.errors
        logs = world.ok("GET", f"/deploy/deployments/{deployment_id}/logs")["logs"]
        assert any("(undo while warm)" in line["message"] for line in logs)
        share, answered, failed = share_of(url, "2.0", seconds=0.5)
        assert (share, failed) == (1.0, 0), (version, share)
        assert [g.name for g in cloud.list_groups(r"hello-dev-v\d{3}")] == ["hello-dev-v001"]
