"""The release tests' world: the deploy tests' world (the real combined app in-process, a
FakeProvider, a fake clock), plus tokens of other people and an environment's release rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.testclient import TestClient

from tests.deploy.conftest import IMG1, IMG2, World, ready, world

__all__ = ["IMG1", "IMG2", "World", "ready", "world"]


def token(world: World, name: str, role: str = "deployer", envs: list[str] | None = None) -> str:
    body: dict[str, Any] = {"name": name, "role": role}
    if envs is not None:
        body["envs"] = envs
    created = world.ok("POST", "/auth/tokens", json=body)
    return str(created["token"])


def person(world: World, name: str, role: str = "deployer", **kw: Any) -> TestClient:
    """A client of the same app that calls as ``name``."""
    secret = token(world, name, role, **kw)
    return TestClient(world.client.app, headers={"Authorization": f"Bearer {secret}"})


def rule(world: World, key: str, value: Any, env: str = "prod") -> None:
    world.ok("PUT", f"/metadata/environments/{env}/{key}", json={"value": value})


def settle(world: World) -> None:
    """Run the engine until nothing is due now (a waiting deployment stays waiting)."""
    engine = world.engine()
    while engine.run_once():
        pass
    engine.close()


def at(world: World, when: str) -> None:
    """Move the fake clock to ``when`` (ISO 8601) and let the engine do what is due."""
    moment = datetime.fromisoformat(when)
    assert moment >= world.clock.now, "the clock only moves forward"
    world.clock.now = moment
    settle(world)


def later(world: World, seconds: float) -> None:
    world.clock.sleep(seconds)
    settle(world)


def summary(world: World, deployment_id: str) -> dict[str, Any]:
    found = world.ok("GET", "/deploy/deployments", params={"limit": 100})["deployments"]
    return next(d for d in found if d["id"] == deployment_id)


def logs(world: World, deployment_id: str) -> list[str]:
    page = world.ok("GET", f"/deploy/deployments/{deployment_id}/logs")
    return [line["message"] for line in page["logs"]]
