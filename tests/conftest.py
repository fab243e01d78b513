"""Shared fixtures: a real database in a temp KLINK_HOME, the real apps, a live server.

Helpers for areas live in ``tests/<area>/conftest.py``. Fakes, where nothing real can run,
live in ``klink.testing`` only.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from klink.server import create_app
from klink.service.runtime import Runtime
from klink.settings import Settings

pytest_plugins = ["tests.fixtures_moto", "tests.fixtures_postgres"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_settings(home: Path, port: int | None = None, **extra: str) -> Settings:
    env = {
        "KLINK_HOME": str(home),
        "KLINK_ENGINE": "0",
        "KLINK_SCHEDULES": "0",
        "KLINK_LISTEN": f"127.0.0.1:{port or free_port()}",
        **extra,
    }
    return Settings.from_env(env)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def settings(home: Path) -> Settings:
    return make_settings(home)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.open(settings)
    yield rt
    rt.close()


@pytest.fixture
def admin_token(runtime: Runtime) -> str:
    return runtime.settings.admin_token_path.read_text().strip()


@pytest.fixture
def client(runtime: Runtime, admin_token: str) -> Iterator[TestClient]:
    """The combined app in-process, authenticated as the admin."""
    with TestClient(create_app(runtime), headers={"Authorization": f"Bearer {admin_token}"}) as c:
        yield c


@pytest.fixture
def anon(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as c:
        yield c


@dataclass
class LiveServer:
    url: str
    runtime: Runtime
    token: str

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token or self.token}"}
        )


@contextmanager
def serving(settings: Settings) -> Iterator[LiveServer]:
    """A real uvicorn server for ``settings`` on its loopback port, in a thread of this process."""
    import uvicorn

    runtime = Runtime.open(settings)
    config = uvicorn.Config(
        create_app(runtime), host="127.0.0.1", port=settings.listen_port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    token = settings.admin_token_path.read_text().strip()
    try:
        yield LiveServer(
            url=f"http://127.0.0.1:{settings.listen_port}", runtime=runtime, token=token
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.close()


@pytest.fixture
def live_server(home: Path) -> Iterator[LiveServer]:
    """A real uvicorn server on a free loopback port, in a thread of this process."""
    with serving(make_settings(home, free_port())) as server:
        yield server
