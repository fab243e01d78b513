"""On the local provider: a target group definition becomes a working HAProxy frontend.

Real daemon, real HAProxy, a real instance of the hello example; loopback only.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from klink.infra.live import Cloud, cloud_for
from klink.infra.reconcile import apply_for, plan_for
from klink.providers.local import control
from klink.providers.local.provider import LocalProvider
from tests.conftest import free_port
from tests.local.conftest import group_with, in_service, make_image, try_get_json, wait_for
from tests.local.test_traffic import answers

pytestmark = pytest.mark.slow

ENV: dict[str, Any] = {"provider": "local"}


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[Cloud, Path]]:
    home = tmp_path / "home"
    provider = LocalProvider.from_environment("dev", ENV, SimpleNamespace(home=home))
    try:
        yield cloud_for(provider, ENV), home
    finally:
        provider.close()
        control.stop_all(home, grace=2.0)


def test_a_target_group_definition_gives_a_working_frontend(
    local: tuple[Cloud, Path], tmp_path: Path
) -> None:
    cloud, home = local
    port, frontend = free_port(), free_port()
    definition = {
        "securityGroups": {"hello-web": {"ingress": [{"ports": 80, "from": ["10.0.0.0/8"]}]}},
        "targetGroups": {
            "hello-web": {
                "port": port,
                "frontendPort": frontend,
                "healthCheck": {"path": "/healthcheck", "intervalSeconds": 5},
            }
        },
    }
    plan = plan_for(definition, "hello", "dev", ENV, cloud)
    assert [(a.op, a.kind, a.name) for a in plan.actions] == [
        ("create", "target_group", "hello-web")
    ]
    assert plan.not_applicable == ("security group hello-web: not applicable on this provider",)
    _plan, result = apply_for(definition, "hello", "dev", ENV, cloud)
    assert result.status == "succeeded"
    assert plan_for(definition, "hello", "dev", ENV, cloud).empty

    # An instance registered with the target group answers through the frontend port.
    image = make_image(home, "1.0", tmp_path)
    group_with(cloud.provider, image, "hello-dev-v000", 1, port=port, target_groups=("hello-web",))
    wait_for(lambda: in_service(cloud.provider, "hello-dev-v000", 1))
    body = wait_for(lambda: try_get_json(f"http://127.0.0.1:{frontend}/healthcheck"), timeout=30)
    assert body["app"] == "hello"
    assert body["version"] == "1.0"

    # A changed health check is planned exactly, applied in place, and the frontend keeps working.
    definition["targetGroups"]["hello-web"]["healthCheck"]["path"] = "/"
    plan = plan_for(definition, "hello", "dev", ENV, cloud)
    assert [a.line for a in plan.actions] == [
        "update target group hello-web: health_check_path /healthcheck -> /"
    ]
    _plan, result = apply_for(definition, "hello", "dev", ENV, cloud)
    assert result.status == "succeeded"
    assert plan_for(definition, "hello", "dev", ENV, cloud).empty
    assert cloud.provider.describe_target_group("hello-web").health_check_path == "/"
    with urllib.request.urlopen(f"http://127.0.0.1:{frontend}/", timeout=5) as response:
        assert response.status == 200

    # Removed from the file: kept without prune, deleted with it (and the frontend closes).
    del definition["targetGroups"]
    plan = plan_for(definition, "hello", "dev", ENV, cloud)
    assert plan.empty
    assert plan.kept == ("target group hello-web (not in the file; prune is off)",)
    pruned = {**definition, "prune": True}
    plan = plan_for(pruned, "hello", "dev", ENV, cloud)
    assert [a.line for a in plan.actions] == ["delete target group hello-web"]
    _plan, result = apply_for(pruned, "hello", "dev", ENV, cloud)
    assert result.status == "succeeded"
    assert [tg.name for tg in cloud.provider.list_target_groups()] == []
    wait_for(lambda: try_get_json(f"http://127.0.0.1:{frontend}/healthcheck") is None)


def test_deployment_weights_survive_infra_changes_and_a_port_change_is_refused(
    local: tuple[Cloud, Path], tmp_path: Path
) -> None:
    """HAProxy frontends and backends come from infra, weights from deployments: an apply of
    the file never resets the weights or the members' servers, and a change the servers could
    not follow (the instances' port) is refused naming the field."""
    cloud, home = local
    provider = cloud.provider
    port, frontend = free_port(), free_port()
    definition: dict[str, Any] = {
        "targetGroups": {
            "hello-web": {
                "port": port,
                "frontendPort": frontend,
                "healthCheck": {"path": "/healthcheck", "intervalSeconds": 1},
            }
        }
    }
    _plan, result = apply_for(definition, "hello", "dev", ENV, cloud)
    assert result.status == "succeeded"
    old, new = "hello-dev-v001", "hello-dev-v002"
    group_with(provider, make_image(home, "1.0", tmp_path), old, 1, port=port)
    group_with(provider, make_image(home, "2.0", tmp_path), new, 1, port=port)
    wait_for(lambda: in_service(provider, old, 1) and in_service(provider, new, 1), timeout=30)
    provider.attach_traffic("hello-web", old)
    provider.attach_traffic("hello-web", new)
    provider.set_traffic("hello-web", {old: 100, new: 0})  # new warm at 0
    wait_for(
        lambda: [g.healthy for g in provider.traffic("hello-web").groups] == [1, 1], timeout=20
    )
    assert answers(frontend, 100) == {"1.0": 100}
    assert plan_for(definition, "hello", "dev", ENV, cloud).empty  # weights are no drift

    # Unrelated changes (the health-check path, the frontend port: a reload) keep the weights.
    moved = free_port()
    definition["targetGroups"]["hello-web"]["healthCheck"]["path"] = "/"
    definition["targetGroups"]["hello-web"]["frontendPort"] = moved
    _plan, result = apply_for(definition, "hello", "dev", ENV, cloud)
    assert result.status == "succeeded", result.to_json()
    state = provider.traffic("hello-web")
    assert state.weights() == {old: 100, new: 0}
    assert [(g.registered, g.draining) for g in state.groups] == [(1, 0), (1, 0)]
    wait_for(lambda: try_get_json(f"http://127.0.0.1:{moved}/healthcheck"), timeout=15)
    assert answers(moved, 100) == {"1.0": 100}
    assert plan_for(definition, "hello", "dev", ENV, cloud).empty
    provider.set_traffic("hello-web", {old: 0, new: 100})  # the deployment goes on
    assert answers(moved, 100) == {"2.0": 100}

    # The instances' port cannot change under running servers: refused, naming the field.
    definition["targetGroups"]["hello-web"]["port"] = free_port()
    _plan, result = apply_for(definition, "hello", "dev", ENV, cloud)
    assert result.status == "failed"
    assert result.error is not None
    assert "another port" in result.error
    assert "cannot change in place" in result.error
    assert provider.describe_target_group("hello-web").port == port
    assert provider.traffic("hello-web").weights() == {old: 0, new: 100}
    assert answers(moved, 100) == {"2.0": 100}
