"""The read API over HTTP: refs, pagination, hostile input, validation, repo creation."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from klink.service.runtime import Runtime
from tests.config.conftest import ConfigWorld, git_env
from tests.conftest import free_port

pytestmark = pytest.mark.slow
BASE = "/config/repos/search/poke"


def _setup(world: ConfigWorld) -> None:
    world.env("poke", provider="local")
    world.app("search")


def _add_history(repo: Path, count: int) -> list[str]:
    """``count`` commits on main with git fast-import (one process), newest last."""
    head = subprocess.run(
        ["git", f"--git-dir={repo}", "rev-parse", "main"],
        capture_output=True,
        text=True,
        check=True,
        env=git_env(),
    ).stdout.strip()
    stream = []
    for n in range(count):
        params = json.dumps({"min": 1, "max": 5, "desiredCapacity": 1 + n % 5}).encode()
        stream.append(
            f"commit refs/heads/main\nmark :{n + 1}\n"
            f"committer Ada <ada@example.com> {1_700_000_000 + n} +0000\n"
            f"data {len(f'change {n}')}\nchange {n}\n"
            + (f"from {head}\n" if n == 0 else "")
            + f"M 100644 inline deployment-params.json\ndata {len(params)}\n"
        )
        stream.append(params.decode() + "\n")
    subprocess.run(
        ["git", f"--git-dir={repo}", "fast-import", "--quiet"],
        input="".join(stream).encode(),
        check=True,
        env=git_env(),
    )
    return subprocess.run(
        ["git", f"--git-dir={repo}", "rev-list", "main"],
        capture_output=True,
        text=True,
        check=True,
        env=git_env(),
    ).stdout.split()


def test_commits_paginate_over_the_whole_history(world: ConfigWorld) -> None:
    _setup(world)
    repo = world.server.runtime.settings.home / "config" / "search-poke.git"
    expected = _add_history(repo, 200)
    assert len(expected) == 201
    seen: list[str] = []
    before = None
    with world.server.client() as http:
        for _ in range(20):
            params: dict[str, str | int] = {"limit": 30}
            if before:
                params["before"] = before
            body = http.get(f"{BASE}/commits", params=params).json()
            seen += [c["hash"] for c in body["commits"]]
            before = body["next"]
            if before is None:
                break
        assert seen == expected
        assert body["commits"][-1]["author"] == "Klink"
        # A file deep in history by HEAD~n and by hash agree.
        deep = http.get(f"{BASE}/files/deployment-params.json", params={"at": "HEAD~150"})
        assert deep.json()["hash"] == expected[150]
        assert deep.json()["data"]["desiredCapacity"] == 1 + (199 - 150) % 5


HOSTILE_REFS = [
    "../../etc/passwd",
    "--output=/tmp/owned",
    "-n",
    "HEAD\x00",
    " HEAD",
    "HEAD main",
    "HEAD:deployment-params.json",
    "main@{0}",
    "HEAD..main",
    "main/.hidden",
    "HEAD;rm -rf /",
    "$(id)",
    "",
]
HOSTILE_NAMES = [
    "secret.json",
    "..%2F..%2Fetc%2Fpasswd",
    ".git",
    "HEAD",
    "deployment-params.json%00",
]


def test_hostile_refs_are_refused_before_git_sees_them(world: ConfigWorld, tmp_path: Path) -> None:
    _setup(world)
    owned = tmp_path / "owned"
    with world.server.client() as http:
        for raw in HOSTILE_REFS:
            ref = raw.replace("/tmp/owned", str(owned))
            for path, param in (
                (f"{BASE}/files/deployment-params.json", "at"),
                (f"{BASE}/diff", "from"),
                (f"{BASE}/commits", "before"),
                (f"{BASE}/resolve", "at"),
            ):
                response = http.get(path, params={param: ref})
                assert response.status_code == 400, (path, ref, response.text)
                assert response.json()["error"]["field"] == param
    assert not owned.exists()


def test_unknown_and_hostile_file_names_are_refused(world: ConfigWorld) -> None:
    _setup(world)
    with httpx.Client(
        base_url=world.server.url, headers={"Authorization": f"Bearer {world.server.token}"}
    ) as http:
        for name in HOSTILE_NAMES:
            response = http.get(f"{BASE}/files/{name}")
            assert 400 <= response.status_code < 500, name
            assert "error" in response.json()


def test_unknown_repos_and_commits_are_404(world: ConfigWorld) -> None:
    _setup(world)
    with world.server.client() as http:
        assert http.get("/config/repos/search/prod/commits").status_code == 404
        missing = http.get(f"{BASE}/files/launch-data.json", params={"at": "deadbeef" * 5})
        assert missing.status_code == 404
        assert missing.json()["error"]["field"] == "at"
        bad_name = http.get("/config/repos/Search/poke/commits")
        assert bad_name.status_code == 400
        assert bad_name.json()["error"]["field"] == "app"
        assert http.get("/config/git/nothere-poke.git/info/refs").status_code == 404
        assert http.get("/config/git/search-poke.git/config").status_code == 404
        listed = http.get("/config/repos").json()["repos"]
        assert [r["name"] for r in listed] == ["search-poke"]
    with httpx.Client(base_url=world.server.url) as anonymous:
        hidden = anonymous.get("/config/git/nothere-poke.git/info/refs")
        assert hidden.status_code == 401
        assert anonymous.get("/config/repos").status_code == 401


def test_validate_checks_a_candidate_without_pushing(world: ConfigWorld) -> None:
    _setup(world)
    with world.server.client() as http:
        good = http.post(
            "/config/validate",
            json={"file": "deployment-params.json", "data": {"min": 1}, "provider": "local"},
        ).json()
        assert good == {"file": "deployment-params.json", "valid": True, "problems": []}
        bad = http.post(
            "/config/validate",
            json={"file": "deployment-params.json", "content": '{"min": 2, "max": 1}'},
        ).json()
        assert bad["valid"] is False
        fields = [p["field"] for p in bad["problems"]]
        assert fields == ["instanceType", "min", "desiredCapacity"]
        unknown = http.post("/config/validate", json={"file": "x.json", "data": {}})
        assert unknown.status_code == 400
        assert unknown.json()["error"]["field"] == "file"
        assert len(http.get(f"{BASE}/commits").json()["commits"]) == 1


def test_creating_repos_needs_admin_and_an_existing_app(world: ConfigWorld) -> None:
    _setup(world)
    reader = world.token("r", "reader")
    with world.server.client(reader) as http:
        assert http.post("/config/repos/search/poke").status_code == 403
        assert http.get(f"{BASE}/commits").status_code == 200
    with world.server.client() as http:
        missing = http.post("/config/repos/nosuch/poke")
        assert missing.status_code == 404
        assert not (world.server.runtime.settings.home / "config" / "nosuch-poke.git").exists()


def test_app_creation_makes_no_call_when_no_env_wants_a_repo(
    runtime: Runtime, client: TestClient
) -> None:
    def no_http(service: str) -> httpx.Client:
        raise AssertionError(f"unexpected call to {service}")

    runtime.http_factory = no_http
    client.put("/metadata/environments/poke", json={"metadata": {"provider": "local"}})
    created = client.put("/metadata/applications/search", json={"metadata": {"contact": "a@b.c"}})
    assert created.status_code == 201


def test_app_stays_created_when_the_config_service_is_down(
    runtime: Runtime, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    dead = free_port()
    runtime.http_factory = lambda service: httpx.Client(base_url=f"http://127.0.0.1:{dead}")
    body = {"metadata": {"provider": "local", "createConfigRepo": True}}
    client.put("/metadata/environments/poke", json=body)
    with caplog.at_level(logging.ERROR):
        created = client.put(
            "/metadata/applications/search", json={"metadata": {"contact": "a@b.c"}}
        )
    assert created.status_code == 201
    assert client.get("/metadata/applications/search").status_code == 200
    assert "search-poke" in caplog.text
    assert not (runtime.settings.home / "config" / "search-poke.git").exists()
