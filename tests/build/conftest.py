"""Build tests: a real server on loopback, real git repositories as sources."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from klink.server import create_app
from klink.service.runtime import Runtime
from tests.conftest import LiveServer, free_port, make_settings

StartServer = Callable[..., LiveServer]


@pytest.fixture
def start_server(home: Path) -> Iterator[StartServer]:
    """Start a real uvicorn server on loopback with extra KLINK_* settings."""
    import uvicorn

    stops: list[Callable[[], None]] = []

    def start(services: list[str] | None = None, **extra: str) -> LiveServer:
        port = free_port()
        settings = make_settings(home, port, **extra)
        runtime = Runtime.open(settings)
        config = uvicorn.Config(
            create_app(runtime, services), host="127.0.0.1", port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

        def stop() -> None:
            server.should_exit = True
            thread.join(timeout=10)
            runtime.close()

        stops.append(stop)
        token = settings.admin_token_path.read_text().strip()
        return LiveServer(url=f"http://127.0.0.1:{port}", runtime=runtime, token=token)

    yield start
    for stop in reversed(stops):
        stop()


def put_app(http: httpx.Client, name: str, **metadata: Any) -> None:
    response = http.put(
        f"/metadata/applications/{name}",
        json={"metadata": {"contact": "team@example.com", **metadata}},
    )
    assert response.status_code in (200, 201), response.text


def put_env(http: httpx.Client, name: str, **metadata: Any) -> None:
    response = http.put(f"/metadata/environments/{name}", json={"metadata": metadata})
    assert response.status_code in (200, 201), response.text


def stream(
    http: httpx.Client, method: str, path: str, **kwargs: Any
) -> tuple[list[str], dict[str, Any]]:
    """The log lines and the final event of an ndjson job response."""
    lines: list[str] = []
    final: dict[str, Any] = {}
    with http.stream(method, path, timeout=120, **kwargs) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("application/x-ndjson")
        for raw in response.iter_lines():
            if not raw.strip():
                continue  # a heartbeat
            event = json.loads(raw)
            if "log" in event:
                lines.append(event["log"])
            else:
                final = event
    return lines, final


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def make_source_repo(path: Path, files: dict[str, str]) -> Path:
    """A real git repository with ``files`` committed on main."""
    path.mkdir(parents=True)
    git(path, "init", "--quiet", "--initial-branch=main")
    git(path, "config", "user.email", "dev@example.com")
    git(path, "config", "user.name", "Dev")
    commit_files(path, files, "initial")
    return path


def commit_files(repo: Path, files: dict[str, str], message: str) -> str:
    for name, content in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


# A build that packs the checkout's app.txt into dist/artifact.tar.gz.
PACK = (
    "echo building $KLINK_APP $KLINK_VERSION; "
    "mkdir -p dist && tar -czf dist/artifact.tar.gz app.txt"
)
