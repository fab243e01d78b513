"""FakeMetadata and FakeConfig: in-memory stand-ins for the metadata and config services. FAKES.

For the engine benchmark (what is measured is the orchestrator's own overhead per action, not
HTTP or git) and the store's tests on PostgreSQL; the other tests use the real services.
"""

from __future__ import annotations

from typing import Any

from klink.errors import NotFound

COMMIT = "c" * 40


class FakeMetadata:
    def __init__(self) -> None:
        self.apps: dict[str, dict[str, Any]] = {}
        self.envs: dict[str, dict[str, Any]] = {}

    def application(self, name: str) -> dict[str, Any]:
        if name not in self.apps:
            raise NotFound(f"application {name!r} does not exist")
        return {"name": name, "metadata": self.apps[name]}

    def environment(self, name: str) -> dict[str, Any]:
        if name not in self.envs:
            raise NotFound(f"environment {name!r} does not exist")
        return {"name": name, "metadata": self.envs[name]}


class FakeConfig:
    def __init__(self, files: dict[str, Any]) -> None:
        self.files = files

    def file(self, app: str, env: str, name: str, at: str) -> tuple[str, Any]:
        return COMMIT, self.files[name]
