"""End to end on the local provider: real processes, real HAProxy, real HTTP on loopback.

v1 then v2 under a bounded loopback load with 0 failed requests; a v3 that never becomes
healthy fails at the health gate while v2 keeps serving, then undo removes it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from klink.cli.loadgen import LoadGenerator
from klink.deploy.context import Services
from klink.deploy.engine import Engine
from klink.deploy.services import probe
from klink.deploy.store import DeploymentStore
from klink.providers import base
from klink.providers.local import control
from klink.providers.local.images import ImageStore
from klink.providers.local.provider import LocalProvider
from klink.service.runtime import utcnow
from tests.conftest import free_port
from tests.deploy.conftest import World
from tests.local.conftest import get_json, make_image

pytestmark = pytest.mark.slow


@pytest.fixture
def cloud(world: World) -> Iterator[LocalProvider]:
    provider = LocalProvider.from_environment(
        "dev", {"provider": "local"}, SimpleNamespace(home=world.home)
    )
    assert isinstance(provider, LocalProvider)
    world.runtime.clock = utcnow
    services = world.services()
    real = Services(
        metadata=services.metadata,
        config=services.config,
        provider_for=lambda env, meta: provider,
        notifier=services.notifier,
        probe=probe,
        clock=utcnow,
    )
    world.runtime.extras["deploy.services"] = lambda: real
    try:
        yield provider
    finally:
        provider.close()
        control.stop_all(world.home, grace=2.0)


def run(world: World, deployment_id: str) -> dict[str, object]:
    engine = Engine(
        DeploymentStore(world.runtime.engine),
        world.runtime.extras["deploy.services"](),
        clock=utcnow,
        sleep=time.sleep,
    )
    engine.drain()
    return world.get(deployment_id)


def broken_image(home: Path, tmp: Path) -> base.Image:
    """Starts, never listens: it can never pass a health check."""
    staging = tmp / "stage-broken"
    (staging / "app").mkdir(parents=True)
    return ImageStore(home).create(
        staging,
        name="hello-3.0",
        start_command="exec sleep 120",
        tags={base.TAG_APP: "hello", base.TAG_VERSION: "3.0"},
    )


def test_red_black_under_load_then_health_gate_and_undo(
    world: World, cloud: LocalProvider, tmp_path: Path
) -> None:
    port, frontend = free_port(), free_port()
    world.app("hello", "dev")
    world.config(
        "hello",
        "dev",
        params={
            "healthCheckIntervalSeconds": 1,
            "instanceHealthyAttempts": 20,
            "loadBalancerHealthyAttempts": 30,
            "keepWarmSeconds": 1,
            "targetGroups": ["hello-dev"],
            "desiredCapacity": 2,
            "max": 2,
        },
        props={"service.port": port, "healthcheck.path": "/healthcheck", "greeting": "hi"},
    )
    cloud.ensure_target_group(
        base.TargetGroupSpec(
            name="hello-dev",
            port=port,
            health_check_path="/healthcheck",
            health_check_interval_seconds=1,
            healthy_threshold=2,
            unhealthy_threshold=2,
            deregistration_delay_seconds=2,
            frontend_port=frontend,
        )
    )
    v1, v2 = make_image(world.home, "1.0", tmp_path), make_image(world.home, "2.0", tmp_path)
    url = f"http://127.0.0.1:{frontend}/healthcheck"

    d1 = run(world, world.deploy(v1.id, app="hello", env="dev"))
    assert d1["status"] == "completed", d1["error"]
    assert get_json(url)["version"] == "1.0"
    first = get_json(url)
    assert first["properties"]["greeting"] == "hi"  # config reached the instance via user-data

    with LoadGenerator(url, threads=4, max_seconds=120) as load:
        time.sleep(0.5)
        d2 = run(world, world.deploy(v2.id, app="hello", env="dev"))
        time.sleep(0.5)
    result = load.result
    assert result is not None
    print(f"v1 -> v2 under load: {result.sent} requests, {result.failed} failed")
    assert d2["status"] == "completed", d2["error"]
    assert result.failed == 0, result.errors
    assert result.sent > 100
    assert set(result.versions) == {"1.0", "2.0"}
    assert get_json(url)["version"] == "2.0"
    assert [g.name for g in cloud.list_groups(r"hello-dev-v\d{3}")] == ["hello-dev-v001"]

    world.config(
        "hello",
        "dev",
        params={
            "healthCheckIntervalSeconds": 1,
            "instanceHealthyAttempts": 3,
            "keepWarmSeconds": 1,
            "targetGroups": ["hello-dev"],
            "desiredCapacity": 2,
            "max": 2,
        },
    )
    v3 = broken_image(world.home, tmp_path)
    with LoadGenerator(url, threads=2, max_seconds=60) as load:
        d3 = run(world, world.deploy(v3.id, app="hello", env="dev"))
    assert d3["status"] == "failed", d3
    assert d3["current"] == "wait_instances_healthy", d3
    assert load.result is not None
    assert load.result.failed == 0
    assert set(load.result.versions) == {"2.0"}  # v2 kept serving throughout

    world.ok("POST", "/deploy/hello/dev/undo", json={"message": "v3 is broken"})
    undone = run(world, str(d3["id"]))
    assert undone["status"] == "completed"
    assert undone["undo"] is True
    assert [g.name for g in cloud.list_groups(r"hello-dev-v\d{3}")] == ["hello-dev-v001"]
    assert get_json(url)["version"] == "2.0"


def gated_image(home: Path, tmp: Path, version: str, flag: Path) -> base.Image:
    """hello, but it starts serving only once ``flag`` exists (a fault the test can clear)."""
    import shlex
    import sys

    staging = tmp / f"stage-gated-{version}"
    (staging / "app").mkdir(parents=True)
    hello = Path(__file__).resolve().parents[2] / "examples" / "hello" / "hello.py"
    (staging / "app" / "hello.py").write_text(hello.read_text())
    start = (
        f"while [ ! -e {shlex.quote(str(flag))} ]; do sleep 0.2; done; "
        f"KLINK_VERSION={version} exec {shlex.quote(sys.executable)} app/hello.py"
    )
    return ImageStore(home).create(
        staging,
        name=f"hello-{version}",
        start_command=start,
        tags={base.TAG_APP: "hello", base.TAG_VERSION: version},
    )


def test_pause_resume_cancel_retry_with_real_processes(
    world: World, cloud: LocalProvider, tmp_path: Path
) -> None:
    port, frontend = free_port(), free_port()
    world.app("hello", "dev")
    params = {
        "healthCheckIntervalSeconds": 1,
        "instanceHealthyAttempts": 4,
        "keepWarmSeconds": 1,
        "targetGroups": ["hello-dev"],
        "pauseAfterInstancesHealthy": True,
    }
    world.config("hello", "dev", params=params, props={"service.port": port})
    cloud.ensure_target_group(
        base.TargetGroupSpec(
            name="hello-dev",
            port=port,
            health_check_interval_seconds=1,
            healthy_threshold=2,
            unhealthy_threshold=2,
            deregistration_delay_seconds=1,
            frontend_port=frontend,
        )
    )
    url = f"http://127.0.0.1:{frontend}/healthcheck"

    # Pause point: the new instances serve, but take no traffic until resumed.
    v1 = make_image(world.home, "1.0", tmp_path)
    first = world.deploy(v1.id, app="hello", env="dev")
    paused = run(world, first)
    assert paused["status"] == "paused"
    instance = cloud.describe_group("hello-dev-v000").instances[0]
    assert get_json(f"http://{instance.private_ip}:{port}/healthcheck")["version"] == "1.0"
    assert cloud.target_health("hello-dev") == []
    world.ok("POST", "/deploy/hello/dev/resume")
    assert run(world, first)["status"] == "completed"
    assert get_json(url)["version"] == "1.0"

    # Retry: v2 fails its health gate while its fault lasts; cleared, retry completes.
    world.config("hello", "dev", params={**params, "pauseAfterInstancesHealthy": False})
    flag = tmp_path / "v2-may-start"
    v2 = gated_image(world.home, tmp_path, "2.0", flag)
    second = world.deploy(v2.id, app="hello", env="dev")
    failed = run(world, second)
    assert failed["status"] == "failed"
    assert failed["current"] == "wait_instances_healthy"
    assert get_json(url)["version"] == "1.0"
    flag.touch()
    world.ok("POST", "/deploy/hello/dev/retry")
    assert run(world, second)["status"] == "completed"
    assert get_json(url)["version"] == "2.0"

    # Cancel while waiting, then undo: the half-made v3 goes, v2 serves on.
    v3 = gated_image(world.home, tmp_path, "3.0", tmp_path / "never")
    third = world.deploy(v3.id, app="hello", env="dev")
    engine = Engine(
        DeploymentStore(world.runtime.engine),
        world.runtime.extras["deploy.services"](),
        clock=utcnow,
        sleep=time.sleep,
    )
    for _ in range(200):
        engine.run_once()
        if world.get(third)["current"] == "wait_instances_healthy":
            break
        time.sleep(0.1)
    world.ok("POST", "/deploy/hello/dev/cancel")
    cancelled = world.get(third)
    assert cancelled["status"] == "failed"
    assert "cancelled by" in str(cancelled["error"])
    world.ok("POST", "/deploy/hello/dev/undo")
    assert run(world, third)["status"] == "completed"
    assert [g.name for g in cloud.list_groups(r"hello-dev-v\d{3}")] == ["hello-dev-v001"]
    assert get_json(url)["version"] == "2.0"


def test_undo_of_a_completed_deployment_under_load(
    world: World, cloud: LocalProvider, tmp_path: Path
) -> None:
    """What ``klink quickstart`` shows: deploy v2 over v1, then undo it, 0 failed requests."""
    port, frontend = free_port(), free_port()
    world.app("hello", "dev")
    world.config(
        "hello",
        "dev",
        params={
            "healthCheckIntervalSeconds": 1,
            "keepWarmSeconds": 1,
            "targetGroups": ["hello-dev"],
        },
        props={"service.port": port},
    )
    cloud.ensure_target_group(
        base.TargetGroupSpec(
            name="hello-dev",
            port=port,
            health_check_interval_seconds=1,
            healthy_threshold=2,
            unhealthy_threshold=2,
            deregistration_delay_seconds=1,
            frontend_port=frontend,
        )
    )
    url = f"http://127.0.0.1:{frontend}/healthcheck"
    v1, v2 = make_image(world.home, "1.0", tmp_path), make_image(world.home, "2.0", tmp_path)
    assert run(world, world.deploy(v1.id, app="hello", env="dev"))["status"] == "completed"
    second = world.deploy(v2.id, app="hello", env="dev")
    assert run(world, second)["status"] == "completed"
    assert get_json(url)["version"] == "2.0"
    with LoadGenerator(url, threads=4, max_seconds=120) as load:
        answer = world.ok("POST", "/deploy/hello/dev/undo", json={"message": "back to v1"})
        assert answer["id"] == second
        undone = run(world, second)
        time.sleep(0.3)
    assert undone["status"] == "completed"
    assert undone["undo"] is True
    assert load.result is not None
    print(f"undo under load: {load.result.sent} requests, {load.result.failed} failed")
    assert load.result.failed == 0, load.result.errors
    assert set(load.result.versions) == {"1.0", "2.0"}
    assert get_json(url)["version"] == "1.0"
    assert [g.name for g in cloud.list_groups(r"hello-dev-v\d{3}")] == ["hello-dev-v000"]


def test_twenty_deployments_with_a_fifth_of_calls_failing(
    world: World, cloud: LocalProvider, tmp_path: Path
) -> None:
    """20% of the local provider's calls fail transiently: twenty deployments in a row of real
    processes behind a real HAProxy complete, one group left, the frontend serving it."""
    from dataclasses import replace

    from klink.deploy.executor import RetryPolicy
    from klink.testing.faults import FaultyProvider

    port, frontend = free_port(), free_port()
    world.app("hello", "dev")
    world.config(
        "hello",
        "dev",
        params={
            "healthCheckIntervalSeconds": 0.2,
            "instanceHealthyAttempts": 100,
            "loadBalancerHealthyAttempts": 150,
            "keepWarmSeconds": 1,
            "targetGroups": ["hello-dev"],
        },
        props={"service.port": port, "healthcheck.path": "/healthcheck"},
    )
    cloud.ensure_target_group(
        base.TargetGroupSpec(
            name="hello-dev",
            port=port,
            health_check_path="/healthcheck",
            health_check_interval_seconds=1,
            healthy_threshold=1,
            unhealthy_threshold=2,
            deregistration_delay_seconds=0,
            frontend_port=frontend,
        )
    )
    images = [make_image(world.home, "1.0", tmp_path), make_image(world.home, "2.0", tmp_path)]
    faulty = FaultyProvider(cloud, rate=0.2, seed=5)
    services = replace(world.runtime.extras["deploy.services"](), provider_for=lambda e, m: faulty)
    engine = Engine(
        DeploymentStore(world.runtime.engine),
        services,
        clock=utcnow,
        sleep=time.sleep,
        retry=RetryPolicy(budget=12, base=0.02, cap=0.2),
    )
    for number in range(20):
        deployment_id = world.deploy(images[number % 2].id, app="hello", env="dev")
        engine.drain()
        d = world.get(deployment_id)
        assert d["status"] == "completed", (number, d["error"])
    assert [g.name for g in cloud.list_groups(r"hello-dev-v\d{3}")] == ["hello-dev-v019"]
    url = f"http://127.0.0.1:{frontend}/healthcheck"
    assert get_json(url)["version"] == "2.0"
    assert sum(faulty.failures.values()) > 40
    print(f"\nlocal: {sum(faulty.failures.values())} faults injected in {faulty.calls} calls")
