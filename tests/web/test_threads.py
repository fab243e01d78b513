"""Many pages at once in the one-process server: a page waits on the services it calls, which
answer from the server's thread pool, so pages must not hold that pool's threads while they
wait. With the pool cut to 3 threads, 12 overviews at once all answer (they would wait forever
on each other if each held a thread)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest

from klink.server import create_app
from klink.service.runtime import Runtime
from tests.conftest import free_port, make_settings

POOL = 3


class SmallPool:
    """The combined app, with the server loop's default thread pool cut to ``POOL`` threads."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = POOL
        await self.app(scope, receive, send)


@pytest.fixture
def server(home: Path) -> Iterator[tuple[str, str]]:
    import uvicorn

    port = free_port()
    runtime = Runtime.open(make_settings(home, port))
    config = uvicorn.Config(
        SmallPool(create_app(runtime)), host="127.0.0.1", port=port, log_level="warning"
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert thread.is_alive(), "the server did not start"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", runtime.settings.admin_token_path.read_text().strip()
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        runtime.close()


def test_many_pages_at_once_leave_the_services_threads(server: tuple[str, str]) -> None:
    url, token = server
    with httpx.Client(base_url=url, timeout=10) as api:
        api.headers["Authorization"] = f"Bearer {token}"
        api.put("/metadata/environments/dev", json={"metadata": {"provider": "local"}})
        api.put("/metadata/applications/search", json={"metadata": {"contact": "a@b.example"}})
    browser = httpx.Client(base_url=url, timeout=15)
    assert browser.post("/sign-in", data={"token": token}).status_code == 303
    statuses: list[int | str] = []

    def load() -> None:
        try:
            statuses.append(browser.get("/", headers={"Accept": "text/html"}).status_code)
        except httpx.HTTPError as exc:
            statuses.append(type(exc).__name__)

    readers = [threading.Thread(target=load) for _ in range(4 * POOL)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout=30)
    browser.close()
    assert statuses == [200] * (4 * POOL)
