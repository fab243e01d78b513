"""Config tests: a live server with environments, and plain git run against it.

``Git`` runs the real ``git`` with no user or system configuration and a fixed identity; the
token goes in an ``Authorization`` header set through the environment (never in a URL).
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import LiveServer


def git_env(token: str | None = None, **extra: str) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("GIT_", "KLINK_"))
    }
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": "Ada Tester",
            "GIT_AUTHOR_EMAIL": "ada@example.com",
            "GIT_COMMITTER_NAME": "Ada Tester",
            "GIT_COMMITTER_EMAIL": "ada@example.com",
            "LC_ALL": "C",
        }
    )
    if token is not None:
        basic = base64.b64encode(f"klink:{token}".encode()).decode()
        env.update(
            {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
            }
        )
    env.update(extra)
    return env


@dataclass
class Git:
    token: str | None

    def run(
        self, args: Sequence[str], cwd: Path | None = None, *, check: bool = True, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=git_env(self.token, **extra),
            check=False,
            timeout=60,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed:\n{done.stderr}")
        return done


@dataclass
class ConfigWorld:
    server: LiveServer

    def admin(self, method: str, path: str, **kwargs: object) -> object:
        with self.server.client() as http:
            response = http.request(method, path, **kwargs)  # type: ignore[arg-type]
            assert response.status_code < 400, response.text
            return response.json() if response.content else None

    def env(self, name: str, provider: str = "local", **metadata: object) -> None:
        body = {"metadata": {"provider": provider, "createConfigRepo": True, **metadata}}
        if provider == "aws":
            body["metadata"].update({"region": "eu-west-1"})  # type: ignore[attr-defined]
        self.admin("PUT", f"/metadata/environments/{name}", json=body)

    def app(self, name: str) -> None:
        body = {"metadata": {"contact": f"{name}-team@example.com"}}
        self.admin("PUT", f"/metadata/applications/{name}", json=body)

    def token(self, name: str, role: str, envs: list[str] | None = None) -> str:
        body: dict[str, object] = {"name": name, "role": role}
        if envs is not None:
            body["envs"] = envs
        result = self.admin("POST", "/auth/tokens", json=body)
        assert isinstance(result, dict)
        return str(result["token"])

    def url(self, app: str, env: str) -> str:
        return f"{self.server.url}/config/git/{app}-{env}.git"

    def git(self, token: str | None = "admin") -> Git:  # noqa: S107 - a marker, not a secret
        return Git(self.server.token if token == "admin" else token)


@pytest.fixture
def world(live_server: LiveServer) -> Iterator[ConfigWorld]:
    return ConfigWorld(live_server)
