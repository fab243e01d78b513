"""The deploy tests' world: the real combined app in-process (metadata, config with real git
repositories, deploy), a FakeProvider where a cloud would be, a fake clock, and an engine run
step by step in the test's thread."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from klink.deploy.context import Services
from klink.deploy.engine import Engine
from klink.deploy.services import runtime_services
from klink.deploy.store import DeploymentStore
from klink.notify import Dispatcher
from klink.server import create_app
from klink.service.runtime import Runtime
from klink.testing.fake_provider import FakeProvider

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class FakeClock:
    """A clock that moves only when slept on (the engine's injected sleep)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=max(seconds, 0.001))


@dataclass
class Notes:
    """Every notification body posted (through the real Dispatcher, with a recording post)."""

    posted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status: int = 200

    def post(self, url: str, body: dict[str, Any]) -> int:
        self.posted.append((url, body))
        return self.status


@dataclass
class World:
    runtime: Runtime
    client: TestClient
    fake: FakeProvider
    clock: FakeClock
    notes: Notes
    home: Path
    metrics: Any = None  # a canary's metric source (FakeMetricSource), for every environment

    def services(self) -> Services:
        base = runtime_services(self.runtime)
        return Services(
            metadata=base.metadata,
            config=base.config,
            provider_for=lambda env, meta: self.fake,
            notifier=Dispatcher(
                post=self.notes.post,
                webhook_url="https://relay.example.com/klink",
                slack_url="https://hooks.example.com/T/B/x",
            ),
            probe=lambda url: False,
            clock=self.clock,
            decisions=base.decisions,
            **({"metrics": lambda provider, env, of: self.metrics} if self.metrics else {}),
        )

    def engine(self, holder: str = "engine-a", lease: float = 30.0) -> Engine:
        return Engine(
            DeploymentStore(self.runtime.engine),
            self.services(),
            holder=holder,
            lease_seconds=lease,
            clock=self.clock,
            sleep=self.clock.sleep,
        )

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        assert response.status_code < 400, response.text
        return response.json() if response.content else None

    def app(self, app: str = "search", env: str = "prod", **metadata: Any) -> None:
        self.ok("PUT", f"/metadata/environments/{env}", json={"metadata": {"provider": "local"}})
        body = {"metadata": {"contact": "team@example.com", **metadata}}
        self.ok("PUT", f"/metadata/applications/{app}", json=body)
        self.ok("POST", f"/config/repos/{app}/{env}")

    def config(self, app: str = "search", env: str = "prod", **files: Any) -> str:
        """Commit and push config files (``params=``, ``props=``, ``launch=``); the new hash."""
        repo = self.home / "config" / f"{app}-{env}.git"
        work = self.home / "work" / f"{app}-{env}"
        env_vars = {**os.environ, **GIT_ENV}
        if not work.exists():
            subprocess.run(["git", "clone", "-q", str(repo), str(work)], check=True, env=env_vars)
        subprocess.run(["git", "pull", "-q"], cwd=work, check=True, env=env_vars)
        names = {
            "params": "deployment-params.json",
            "props": "application-properties.json",
            "launch": "launch-data.json",
        }
        for key, value in files.items():
            (work / names[key]).write_text(json.dumps(value, indent=2))
        subprocess.run(["git", "commit", "-qam", "change"], cwd=work, check=True, env=env_vars)
        push = subprocess.run(
            ["git", "push", "-q", "origin", "HEAD"], cwd=work, env=env_vars, capture_output=True
        )
        assert push.returncode == 0, push.stderr
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True, check=True
        )
        return head.stdout.strip()

    def deploy(self, image: str, app: str = "search", env: str = "prod", **extra: Any) -> str:
        body = {"image": image, "message": "test deploy", **extra}
        response = self.client.post(f"/deploy/{app}/{env}", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def get(self, deployment_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.ok("GET", f"/deploy/deployments/{deployment_id}")
        return result

    def groups(self, app: str = "search", env: str = "prod") -> list[str]:
        return [g.name for g in self.fake.list_groups(rf"{app}-{env}-v\d{{3}}")]


FAST_PARAMS = {"healthCheckIntervalSeconds": 1, "targetGroups": ["web"]}


@pytest.fixture
def world(runtime: Runtime, admin_token: str, home: Path) -> Iterator[World]:
    clock = FakeClock()
    runtime.clock = clock
    app = create_app(runtime)

    def http(service: str) -> Any:
        return TestClient(
            app,
            base_url=f"http://testserver/{service}",
            headers={"Authorization": f"Bearer {runtime.internal_token}"},
        )

    runtime.http_factory = http
    fake = FakeProvider(pending_polls=3)
    from klink.providers.base import TargetGroupSpec

    fake.ensure_target_group(TargetGroupSpec(name="web", port=8080))
    notes = Notes()
    with TestClient(app, headers={"Authorization": f"Bearer {admin_token}"}) as client:
        w = World(runtime, client, fake, clock, notes, home)
        runtime.extras["deploy.services"] = w.services
        yield w


IMG1, IMG2, IMG3 = "img-000000000001", "img-000000000002", "img-000000000003"


def ready(world: World, params: dict[str, Any] | None = None, **metadata: Any) -> str:
    """search/prod with config committed and three images; returns the config commit."""
    world.app(**metadata)
    commit = world.config(params={**FAST_PARAMS, **(params or {})}, props={"service.port": 8080})
    for number, image in enumerate((IMG1, IMG2, IMG3), start=1):
        world.fake.add_image(image, "search", f"{number}.0")
    return commit


def deployed(world: World, image: str, **extra: Any) -> dict[str, Any]:
    deployment_id = world.deploy(image, **extra)
    world.engine().drain()
    return world.get(deployment_id)
