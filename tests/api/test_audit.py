"""The audit log: every mutating request of every service, with who, for whom, what, on what,
the outcome and when; read through ``GET /auth/audit`` (admin) with filters and pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from klink.auth.tables import audit
from klink.server import create_app
from klink.service.runtime import Runtime
from tests.conftest import LiveServer, make_settings

APP = {"metadata": {"contact": "search-team@example.com"}}
ENV = {"metadata": {"provider": "local"}}


def entries(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    answer = client.get("/auth/audit", params=params)
    assert answer.status_code == 200, answer.text
    page: list[dict[str, Any]] = answer.json()["entries"]
    return page


def token(client: TestClient, name: str, role: str, **extra: Any) -> str:
    answer = client.post("/auth/tokens", json={"name": name, "role": role, **extra})
    assert answer.status_code == 201, answer.text
    secret: str = answer.json()["token"]
    return secret


def test_a_change_is_recorded_with_actor_action_target_outcome_and_time(
    client: TestClient,
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert client.put("/metadata/applications/search", json=APP).status_code == 201
    [entry] = entries(client)
    assert entry["actor"] == "admin"
    assert entry["on_behalf_of"] is None
    assert entry["action"] == "PUT /metadata/applications/{name}"
    assert entry["target"] == "/metadata/applications/search"
    assert entry["outcome"] == 201
    at = datetime.fromisoformat(entry["at"])
    assert before <= at <= datetime.now(UTC)


def test_reads_are_not_recorded_and_failures_are(client: TestClient, anon: TestClient) -> None:
    client.get("/metadata/applications")
    client.post("/config/validate", json={"file": "launch-data.json", "data": []})
    assert entries(client) == []
    assert client.put("/metadata/applications/Bad-Name", json=APP).status_code == 400
    assert client.delete("/metadata/applications/nosuch").status_code == 404
    assert anon.delete("/auth/tokens/admin").status_code == 401
    assert client.post("/deploy/search/prod", json={"message": ""}).status_code == 400
    got = [(e["actor"], e["action"], e["target"], e["outcome"]) for e in entries(client)]
    assert got == [
        ("admin", "POST /deploy/{app}/{env}", "/deploy/search/prod", 400),
        (None, "DELETE /auth/tokens/{name}", "/auth/tokens/admin", 401),
        ("admin", "DELETE /metadata/applications/{name}", "/metadata/applications/nosuch", 404),
        ("admin", "PUT /metadata/applications/{name}", "/metadata/applications/Bad-Name", 400),
    ]


def test_secrets_are_never_recorded(client: TestClient, runtime: Runtime) -> None:
    secret = token(client, "ci", "deployer")
    admin_secret = runtime.settings.admin_token_path.read_text().strip()
    client.put("/metadata/applications/search/note", json={"value": secret})
    with runtime.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(audit)).mappings()]
    assert [r["action"] for r in rows] == [
        "POST /auth/tokens",
        "PUT /metadata/applications/{name}/{key}",
    ]
    stored = json.dumps(rows, default=str)
    assert secret not in stored
    assert admin_secret not in stored
    assert "Bearer" not in stored


def test_only_admins_read_the_log(client: TestClient, anon: TestClient) -> None:
    reader = token(client, "watcher", "reader")
    deployer = token(client, "ci", "deployer")
    for secret, status in ((reader, 403), (deployer, 403), (None, 401)):
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        answer = anon.get("/auth/audit", headers=headers)
        assert answer.status_code == status
        assert answer.json()["error"]["code"] in ("forbidden", "unauthorized")


def test_the_actor_is_the_token_that_asked(client: TestClient, anon: TestClient) -> None:
    deployer = token(client, "ci", "deployer", envs=["poke"])
    client.put("/metadata/environments/prod", json=ENV)
    answer = anon.post(
        "/deploy/search/prod",
        json={"image": "img-1", "message": "go"},
        headers={"Authorization": f"Bearer {deployer}"},
    )
    assert answer.status_code == 403
    [entry] = entries(client, actor="ci")
    assert (entry["action"], entry["outcome"]) == ("POST /deploy/{app}/{env}", 403)


def test_filters_and_pages(client: TestClient) -> None:
    filters_and_pages(client)


@pytest.mark.postgres
def test_filters_and_pages_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    runtime = Runtime.open(make_settings(tmp_path / "home", KLINK_DATABASE_URL=postgres_url))
    try:
        assert runtime.engine.dialect.name == "postgresql"
        secret = runtime.settings.admin_token_path.read_text().strip()
        headers = {"Authorization": f"Bearer {secret}"}
        with TestClient(create_app(runtime), headers=headers) as client:
            filters_and_pages(client)
    finally:
        runtime.close()


def filters_and_pages(client: TestClient) -> None:
    for name in ("alpha", "beta", "gamma"):
        client.put(f"/metadata/applications/{name}", json=APP)
        client.put(f"/metadata/applications/{name}/owner", json={"value": "me"})
    client.put("/metadata/applications/betamax", json=APP)
    everything = entries(client)
    assert len(everything) == 7
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids, reverse=True)  # newest first

    below = entries(client, target="/metadata/applications/beta")
    assert [e["target"] for e in below] == [
        "/metadata/applications/beta/owner",
        "/metadata/applications/beta",
    ]  # that path and below it; not betamax
    keys = entries(client, action="PUT /metadata/applications/{name}/{key}")
    assert len(keys) == 3
    assert entries(client, actor="someone-else") == []
    assert entries(client, since=(datetime.now(UTC) + timedelta(hours=1)).isoformat()) == []
    assert len(entries(client, since=(datetime.now(UTC) - timedelta(hours=1)).isoformat())) == 7

    seen: list[int] = []
    cursor: int | None = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor is not None:
            params["before"] = cursor
        page = client.get("/auth/audit", params=params).json()
        seen += [e["id"] for e in page["entries"]]
        cursor = page["next"]
        if cursor is None:
            break
        assert len(page["entries"]) == 3
    assert seen == ids

    bad = client.get("/auth/audit", params={"since": "yesterday"})
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "since"
    naive = client.get("/auth/audit", params={"since": "2026-01-01T00:00:00"})
    assert naive.status_code == 400
    assert client.get("/auth/audit", params={"limit": 0}).json()["error"]["field"] == "limit"

    # LIKE's own wildcards in a target are data, not patterns.
    client.put("/metadata/applications/xay/owner", json={"value": 1})
    assert len(entries(client, target="/metadata/applications/xay")) == 1
    assert entries(client, target="/metadata/applications/x_y") == []
    assert entries(client, target="/metadata/applications/x%") == []


def _boom_app(runtime: Runtime) -> Any:
    from fastapi import APIRouter

    from klink.service import make_service

    router = APIRouter()

    @router.post("/boom/{thing}")
    def boom(thing: str) -> None:
        raise RuntimeError(f"no {thing}")

    return make_service("boom", runtime, [router])


def test_an_unexpected_error_is_recorded_as_500(runtime: Runtime, admin_token: str) -> None:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with TestClient(_boom_app(runtime), raise_server_exceptions=False) as boom:
        assert boom.post("/boom/x", headers=headers).status_code == 500
    with runtime.engine.connect() as conn:
        rows = conn.execute(sa.select(audit.c.action, audit.c.target, audit.c.outcome)).all()
    assert [tuple(r) for r in rows] == [("POST /boom/boom/{thing}", "/boom/boom/x", 500)]


def test_a_streamed_answer_is_recorded(live_server: LiveServer) -> None:
    with live_server.client() as http:
        http.put("/metadata/environments/poke", json=ENV)
        with http.stream("POST", "/bake/base", json={}) as answer:
            lines = list(answer.iter_lines())
            assert answer.status_code == 200, lines
        assert "result" in lines[-1]
        [entry] = http.get("/auth/audit", params={"action": "POST /bake/base"}).json()["entries"]
    assert (entry["actor"], entry["target"], entry["outcome"]) == ("admin", "/bake/base", 200)


def test_the_entry_is_written_before_the_last_part_of_the_answer(runtime: Runtime) -> None:
    """A client that has its whole answer finds the entry: streamed in parts or sent in one."""
    from klink.service.audit import AuditMiddleware

    def logged() -> list[str]:
        with runtime.engine.connect() as conn:
            return [row.target for row in conn.execute(sa.select(audit.c.target))]

    async def streamed(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"two\n", "more_body": False})

    seen: list[tuple[bool, list[str]]] = []

    async def send(message: Any) -> None:
        if message["type"] == "http.response.body":
            seen.append((bool(message.get("more_body")), logged()))

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/base", "root_path": "", "state": {}}
    middleware = AuditMiddleware(streamed, service="bake", runtime=runtime)
    anyio.run(middleware, scope, receive, send)
    assert seen == [(True, []), (False, ["/bake/base"])]
    assert logged() == ["/bake/base"]  # once, not again as the request ends


def test_a_log_that_cannot_be_written_does_not_change_the_answer(
    client: TestClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    with runtime.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit RENAME TO audit_away"))
    assert client.put("/metadata/applications/search", json=APP).status_code == 201
    assert "could not record PUT /metadata/applications/{name}" in caplog.text
