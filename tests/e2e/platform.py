"""The whole platform as separate processes, for end-to-end tests and benchmarks.

``Platform`` runs ``klink serve`` (all services and the engine) as a child process on a free
loopback port with its own ``KLINK_HOME``; the server starts the local cloud daemon (HAProxy,
instances) when an environment uses it. Everything is driven over HTTP and plain git, as a user
would. ``close()`` runs ``klink stop`` and then ``stop_all`` on the home, so nothing outlives a
test. Each Python process of the platform records any non-loopback connect (``netguard.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from klink.providers.local import control

HERE = Path(__file__).resolve().parent
FINAL = ("completed", "failed", "invalid", "cancelled")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Klink e2e",
    "GIT_AUTHOR_EMAIL": "e2e@example.com",
    "GIT_COMMITTER_NAME": "Klink e2e",
    "GIT_COMMITTER_EMAIL": "e2e@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Platform:
    """``klink serve`` in a child process; ``start()``, ``kill9()``, ``close()``."""

    def __init__(self, root: Path, extra_env: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.home = root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.netlog = root / "non-loopback-connects.log"
        guard = root / "netguard"
        guard.mkdir(exist_ok=True)
        shutil.copy(HERE / "netguard.py", guard / "sitecustomize.py")
        self.env = {
            **os.environ,
            "KLINK_HOME": str(self.home),
            "KLINK_LISTEN": f"127.0.0.1:{self.port}",
            "KLINK_SCHEDULES": "0",
            "KLINK_LOG_LEVEL": "WARNING",
            "KLINK_E2E_NETLOG": str(self.netlog),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(guard), os.environ.get("PYTHONPATH", "")) if p
            ),
            "CHECKPOINT_DISABLE": "1",
            **(extra_env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.token = ""

    def start(self, timeout: float = 60.0) -> None:
        log = open(self.home / "serve.log", "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "klink.cli.main", "serve"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"klink serve did not start:\n{self.log_tail()}")
            time.sleep(0.05)
        self.token = (self.home / "admin-token").read_text().strip()

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/metadata/ping", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        path = self.home / "serve.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill9(self) -> None:
        """SIGKILL the server process (the local cloud daemon, detached, lives on)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def close(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "klink.cli.main", "stop", "--grace", "2"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        control.stop_all(self.home, grace=2.0)

    def non_loopback_connects(self) -> list[str]:
        return self.netlog.read_text().splitlines() if self.netlog.exists() else []

    def client(self, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=timeout,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        with self.client() as http:
            answer = http.request(method, path, **kwargs)
        if answer.status_code >= 400:
            raise AssertionError(f"{method} {path}: {answer.status_code} {answer.text}")
        return answer.json() if answer.content else None

    def stream(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to an ndjson endpoint (build, bake); the final result or error object."""
        final: dict[str, Any] = {}
        with self.client(timeout=300) as http, http.stream("POST", path, json=body) as answer:
            if answer.status_code >= 400:
                answer.read()
                raise AssertionError(f"POST {path}: {answer.status_code} {answer.text}")
            for line in answer.iter_lines():
                if line.strip():
                    item = json.loads(line)
                    if "result" in item or "error" in item:
                        final = item
        return final

    def deploy(self, app: str, env: str, image: str, message: str = "e2e") -> str:
        answer = self.call(
            "POST", f"/deploy/{app}/{env}", json={"image": image, "message": message}
        )
        return str(answer["id"])

    def wait(self, deployment: str, timeout: float = 90.0, paused: bool = True) -> dict[str, Any]:
        """Poll until the deployment is final (or paused); its record."""
        deadline = time.monotonic() + timeout
        while True:
            record: dict[str, Any] = self.call("GET", f"/deploy/deployments/{deployment}")
            if record["status"] in FINAL or (paused and record["status"] == "paused"):
                return record
            if time.monotonic() > deadline:
                raise AssertionError(f"deployment {deployment} still {record['status']}: {record}")
            time.sleep(0.1)

    def tasks(self, deployment: str) -> list[dict[str, Any]]:
        answer = self.call("GET", f"/deploy/deployments/{deployment}/tasks")
        tasks: list[dict[str, Any]] = answer["tasks"] if isinstance(answer, dict) else answer
        return tasks


def git(args: list[str], cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def push_config(platform: Platform, app: str, env: str, files: Mapping[str, Any]) -> str:
    """Commit ``files`` (name -> JSON value, or str for text) to the app's config repo; the hash."""
    work = platform.root / "config-work" / f"{app}-{env}"
    if not work.exists():
        work.parent.mkdir(parents=True, exist_ok=True)
        git(
            ["clone", "-q", str(platform.home / "config" / f"{app}-{env}.git"), str(work)],
            work.parent,
        )
    git(["pull", "-q"], work)
    for name, value in files.items():
        text = value if isinstance(value, str) else json.dumps(value, indent=2) + "\n"
        (work / name).write_text(text)
    git(["add", "-A"], work)
    if git(["status", "--porcelain"], work).strip():
        git(["commit", "-q", "-m", "e2e config"], work)
        git(["push", "-q", "origin", "HEAD"], work)
    return git(["rev-parse", "HEAD"], work).strip()


def local_hello(
    platform: Platform,
    params: Mapping[str, Any],
    *,
    port: int | None = None,
    frontend: int | None = None,
) -> str:
    """Environment ``dev`` (local), app ``hello``, its config and an HAProxy frontend (infra
    apply of ``infrastructure.yaml``). Returns the load balancer URL."""
    port, frontend = port or free_port(), frontend or free_port()
    platform.call("PUT", "/metadata/environments/dev", json={"metadata": {"provider": "local"}})
    app = {"metadata": {"contact": "team@example.com"}}
    platform.call("PUT", "/metadata/applications/hello", json=app)
    platform.call("POST", "/config/repos/hello/dev")
    infrastructure = (
        "targetGroups:\n"
        "  hello:\n"
        f"    port: {port}\n"
        f"    frontendPort: {frontend}\n"
        "    healthCheck: {path: /healthcheck, intervalSeconds: 1, healthyThreshold: 2,"
        " unhealthyThreshold: 2}\n"
        "    deregistrationDelaySeconds: 1\n"
    )
    push_config(
        platform,
        "hello",
        "dev",
        {
            "deployment-params.json": {
                "healthCheckIntervalSeconds": 0.5,
                "targetGroups": ["hello"],
                "keepWarmSeconds": 1,  # the old group's warm window, short for the tests
                **params,
            },
            "application-properties.json": {
                "service.port": port,
                "healthcheck.path": "/healthcheck",
            },
            "infrastructure.yaml": infrastructure,
        },
    )
    platform.call("POST", "/infra/hello/dev/apply", json={})
    return f"http://127.0.0.1:{frontend}"


def in_traffic(cloud: Any, target_group: str) -> dict[str, tuple[int, int, int]]:
    """The balancer members that take traffic: group -> (weight, registered, healthy)."""
    state = cloud.traffic(target_group)
    return {g.name: (g.weight, g.registered, g.healthy) for g in state.groups if g.weight > 0}
