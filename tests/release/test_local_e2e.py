"""End to end on the local provider (real processes, real HAProxy, real HTTP on loopback): a
version that runs in poke is promoted to prod, where it waits, having changed nothing, until a
second person approves with their own token; then it serves in prod, with its lineage."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from klink.deploy.context import Services
from klink.deploy.engine import Engine
from klink.deploy.services import probe
from klink.deploy.store import DeploymentStore
from klink.providers import base
from klink.providers.local import control
from klink.providers.local.provider import LocalProvider
from klink.service.runtime import utcnow
from tests.conftest import free_port
from tests.local.conftest import get_json, make_image, try_get_json
from tests.release.conftest import World, logs, person, rule

pytestmark = pytest.mark.slow


@pytest.fixture
def cloud(world: World) -> Iterator[LocalProvider]:
    provider = LocalProvider.from_environment(
        "poke", {"provider": "local"}, SimpleNamespace(home=world.home)
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
        decisions=services.decisions,
    )
    world.runtime.extras["deploy.services"] = lambda: real
    try:
        yield provider
    finally:
        provider.close()
        control.stop_all(world.home, grace=2.0)


def engine(world: World) -> Engine:
    return Engine(
        DeploymentStore(world.runtime.engine),
        world.runtime.extras["deploy.services"](),
        clock=utcnow,
        sleep=time.sleep,
    )


def environment(world: World, cloud: LocalProvider, env: str, port: int) -> str:
    """hello in ``env`` behind its own HAProxy frontend; the frontend's health URL."""
    frontend = free_port()
    world.app("hello", env)
    world.config(
        "hello",
        env,
        params={
            "healthCheckIntervalSeconds": 1,
            "instanceHealthyAttempts": 20,
            "loadBalancerHealthyAttempts": 30,
            "targetGroups": [f"hello-{env}"],
        },
        props={"service.port": port, "healthcheck.path": "/healthcheck", "greeting": env},
    )
    cloud.ensure_target_group(
        base.TargetGroupSpec(
            name=f"hello-{env}",
            port=port,
            health_check_path="/healthcheck",
            health_check_interval_seconds=1,
            healthy_threshold=2,
            unhealthy_threshold=2,
            deregistration_delay_seconds=1,
            frontend_port=frontend,
        )
    )
    return f"http://127.0.0.1:{frontend}/healthcheck"


def test_promote_poke_to_prod_with_a_second_persons_approval(
    world: World, cloud: LocalProvider, tmp_path: Path
) -> None:
    port = free_port()
    poke = environment(world, cloud, "poke", port)
    prod = environment(world, cloud, "prod", port)
    rule(world, "approvals", {"required": 1, "roles": ["deployer"]})
    rule(world, "promotesFrom", "poke")
    v1 = make_image(world.home, "1.0", tmp_path)

    source = world.deploy(v1.id, app="hello", env="poke")
    engine(world).drain()
    assert world.get(source)["status"] == "completed", world.get(source)["error"]
    assert get_json(poke)["version"] == "1.0"
    assert get_json(poke)["properties"]["greeting"] == "poke"

    created = world.ok("POST", "/deploy/hello/prod/promote", json={"message": "passed in poke"})
    runner = engine(world)
    while runner.run_once():  # preparation, up to the approval wait
        pass
    d = world.get(created["id"])
    assert (d["status"], d["current"]) == ("preparing", "await_approval")
    assert d["waitingFor"] == "approvals 0 of 1 from deployer on prod"
    assert cloud.list_groups(r"hello-prod-v\d{3}") == []
    assert try_get_json(prod) is None  # nothing serves in prod yet

    own = world.client.post(f"/deploy/deployments/{d['id']}/approve", json={"message": "me"})
    assert own.status_code == 403
    alice = person(world, "alice", "deployer", envs=["prod"])
    approved = alice.post(f"/deploy/deployments/{d['id']}/approve", json={"message": "lgtm"})
    assert approved.status_code == 200, approved.text

    engine(world).drain()
    d = world.get(created["id"])
    assert d["status"] == "completed", d["error"]
    assert d["promotedFrom"] == {
        "env": "poke",
        "deployment": source,
        "group": "hello-poke-v000",
        "image": v1.id,
    }
    answer = get_json(prod)
    assert answer["version"] == "1.0"
    assert answer["properties"]["greeting"] == "prod"  # prod's own config
    assert get_json(poke)["version"] == "1.0"
    assert [g.name for g in cloud.list_groups(r"hello-prod-v\d{3}")] == ["hello-prod-v000"]
    assert [a["actor"] for a in d["approvals"]] == ["alice"]
    assert "approved by alice (1 of 1): lgtm" in logs(world, d["id"])
