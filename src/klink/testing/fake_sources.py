"""FakeMetadata and FakeConfig: in-memory stand-ins for the metadata and config services. FAKES.

For the engine benchmark (what is measured is the orchestrator's own overhead per action, not
HTTP or git) and the store's tests on PostgreSQL; the other tests use the real services.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from klink.errors import NotFound

if TYPE_CHECKING:
    from klink.deploy.context import Services

COMMIT = "c" * 40


class FakeMetadata:
    def __init__(self) -> None:
        self.apps: dict[str, dict[str, Any]] = {}
        self.envs: dict[str, dict[str, Any]] = {}

    def application(self, name: str) -> dict[str, Any]:
        if name not in self.apps:
            raise NotFound(f"application {name!r} does not exist")
        return {"name": name, "metadata": self.apps[name]}

    def environments(self) -> list[dict[str, Any]]:
        return [{"name": name, "metadata": meta} for name, meta in sorted(self.envs.items())]

    def environment(self, name: str) -> dict[str, Any]:
        if name not in self.envs:
            raise NotFound(f"environment {name!r} does not exist")
        return {"name": name, "metadata": self.envs[name]}


class FakeConfig:
    def __init__(self, files: dict[str, Any]) -> None:
        self.files = files

    def file(self, app: str, env: str, name: str, at: str) -> tuple[str, Any]:
        return COMMIT, self.files[name]


def fake_services(provider: Any, apps: list[str], env: str = "prod") -> Services:
    """Engine ``Services`` for ``apps`` in ``env`` on ``provider``, every other collaborator a
    fake: metadata and config in memory (a web app on 8080 behind target group ``web``),
    notifications accepted and dropped, every probe healthy, the wall clock."""
    from klink.deploy.context import Services
    from klink.notify import Dispatcher
    from klink.service.runtime import utcnow

    metadata = FakeMetadata()
    metadata.envs[env] = {"provider": "local"}
    for app in apps:
        metadata.apps[app] = {"contact": "t@example.com"}
    return Services(
        metadata=metadata,
        config=FakeConfig(
            {
                "application-properties.json": {"service.port": 8080},
                "deployment-params.json": {"targetGroups": ["web"]},
                "launch-data.json": [],
            }
        ),
        provider_for=lambda env, meta: provider,
        notifier=Dispatcher(post=lambda url, body: 200),
        probe=lambda url: True,
        clock=utcnow,
    )
