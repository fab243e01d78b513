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
