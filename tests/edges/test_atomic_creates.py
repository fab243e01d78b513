"""Creates are atomic: one creator, everyone else told so (409), on SQLite and PostgreSQL;
config-repo creation is idempotent under concurrency (one 201, the others 200)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, free_port, make_settings, serving


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    extra = {}
    if request.param == "postgres":
        extra["KLINK_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    with serving(make_settings(tmp_path / "home", free_port(), **extra)) as live:
        yield live


def _at_once(server: LiveServer, n: int, call: Callable[[httpx.Client, int], Any]) -> Counter[int]:
    clients = [server.client() for _ in range(n)]
    try:
        with ThreadPoolExecutor(n) as pool:
            responses = list(pool.map(lambda i: call(clients[i], i), range(n)))
    finally:
        for client in clients:
            client.close()
    for response in responses:
        if response.status_code >= 400:
            assert response.json()["error"]["code"], response.text
    return Counter(r.status_code for r in responses)


def test_twenty_concurrent_app_creates_give_one_201_and_nineteen_409(server: LiveServer) -> None:
    def create(http: httpx.Client, i: int) -> httpx.Response:
        body = {"name": "search", "metadata": {"contact": f"team{i}@example.com"}}
        return http.post("/metadata/applications", json=body)

    assert _at_once(server, 20, create) == {201: 1, 409: 19}
    with server.client() as http:
        history = http.get("/metadata/applications/search/history").json()["history"]
    assert len(history) == 1  # no silent overwrite


def test_twenty_concurrent_env_creates_give_one_201(server: LiveServer) -> None:
    def create(http: httpx.Client, _i: int) -> httpx.Response:
        body = {"name": "poke", "metadata": {"provider": "local"}}
        return http.post("/metadata/environments", json=body)

    assert _at_once(server, 20, create) == {201: 1, 409: 19}


def test_twenty_concurrent_token_creates_give_one_201(server: LiveServer) -> None:
    def create(http: httpx.Client, _i: int) -> httpx.Response:
        return http.post("/auth/tokens", json={"name": "ci", "role": "reader"})

    assert _at_once(server, 20, create) == {201: 1, 409: 19}


def test_concurrent_upserts_never_fail(server: LiveServer) -> None:
    # PUT is the documented upsert: the first creates, the others replace; none is a 5xx.
    def upsert(http: httpx.Client, i: int) -> httpx.Response:
        body = {"metadata": {"contact": f"team{i}@example.com"}}
        return http.put("/metadata/applications/search", json=body)

    assert _at_once(server, 20, upsert) == {201: 1, 200: 19}


def test_a_create_of_an_existing_record_is_409_and_changes_nothing(server: LiveServer) -> None:
    with server.client() as http:
        body = {"name": "search", "metadata": {"contact": "a@b.c"}}
        assert http.post("/metadata/applications", json=body).status_code == 201
        again = http.post(
            "/metadata/applications", json={"name": "search", "metadata": {"contact": "x@y.z"}}
        )
        assert again.status_code == 409
        assert again.json()["error"]["field"] == "name"
        assert http.get("/metadata/applications/search").json()["metadata"] == {"contact": "a@b.c"}
        bad = http.post("/metadata/applications", json={"name": "Bad-Name", "metadata": {}})
        assert bad.status_code == 400


def test_twenty_concurrent_cli_create_apps_say_created_once(live_server: LiveServer) -> None:
    argv = [sys.executable, "-m", "klink.cli.main", "create-app", "search", "--contact", "a@b.c"]
    argv += ["--server", live_server.url, "--token", live_server.token]
    processes = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(20)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in processes]
    created = [out for code, out, _ in results if code == 0]
    assert created == ["created application search\n"]
    refused = [err for code, _, err in results if code != 0]
    assert len(refused) == 19
    assert all("exists" in err and len(err.strip().splitlines()) == 1 for err in refused), refused


@pytest.mark.slow
def test_eighty_concurrent_config_repo_creates_give_one_creator(live_server: LiveServer) -> None:
    with live_server.client() as http:
        body = {"metadata": {"provider": "local"}}
        assert http.put("/metadata/environments/poke", json=body).status_code == 201
        body = {"metadata": {"contact": "a@b.c"}}
        assert http.put("/metadata/applications/search", json=body).status_code == 201

    def create(client: httpx.Client, _i: int) -> httpx.Response:
        return client.post("/config/repos/search/poke", timeout=120)

    assert _at_once(live_server, 80, create) == {201: 1, 200: 79}
    with live_server.client() as http:
        commits = http.get("/config/repos/search/poke/commits").json()["commits"]
    assert len(commits) == 1
