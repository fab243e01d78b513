"""Tokens and roles: who may read, who may change, and who is recorded as the actor."""

from __future__ import annotations

import stat

from starlette.testclient import TestClient

from klink.service.runtime import Runtime


def make_token(client: TestClient, name: str, role: str, envs: list[str] | None = None) -> str:
    response = client.post("/auth/tokens", json={"name": name, "role": role, "envs": envs})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def test_first_start_writes_admin_token_mode_600(runtime: Runtime) -> None:
    path = runtime.settings.admin_token_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("klk_")
    # A second start with tokens present does not replace it.
    before = path.read_text()
    Runtime.open(runtime.settings).close()
    assert path.read_text() == before


def test_tokens_are_stored_hashed(client: TestClient, runtime: Runtime) -> None:
    token = make_token(client, "ci", "reader")
    import sqlalchemy as sa

    with runtime.engine.connect() as conn:
        stored = [row[0] for row in conn.execute(sa.text("SELECT token_hash FROM tokens"))]
    assert token not in stored
    assert all(len(h) == 64 for h in stored)


def test_missing_and_bad_tokens_are_401(anon: TestClient) -> None:
    assert anon.get("/metadata/applications").status_code == 401
    response = anon.get("/metadata/applications", headers={"Authorization": "Bearer klk_nope"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_reader_reads_but_does_not_change(client: TestClient, anon: TestClient) -> None:
    token = make_token(client, "viewer", "reader")
    headers = {"Authorization": f"Bearer {token}"}
    assert anon.get("/metadata/applications", headers=headers).status_code == 200
    response = anon.put("/metadata/applications/search", json={"metadata": {}}, headers=headers)
    assert response.status_code == 403
    assert client.get("/metadata/applications/search").status_code == 404
    # Nor may a reader create tokens.
    assert (
        anon.post("/auth/tokens", json={"name": "x", "role": "admin"}, headers=headers).status_code
        == 403
    )


def test_change_records_the_token_name_as_actor(client: TestClient, anon: TestClient) -> None:
    token = make_token(client, "alice", "admin")
    headers = {"Authorization": f"Bearer {token}"}
    assert (
        anon.put(
            "/metadata/applications/search",
            json={"metadata": {"contact": "a@b.c"}},
            headers=headers,
        ).status_code
        == 201
    )
    history = client.get("/metadata/applications/search/history").json()["history"]
    assert history[0]["actor"] == "alice"


def test_token_rules(client: TestClient) -> None:
    assert client.post("/auth/tokens", json={"name": "r", "role": "root"}).status_code == 400
    limited = client.post("/auth/tokens", json={"name": "r", "role": "reader", "envs": ["prod"]})
    assert limited.status_code == 400
    assert limited.json()["error"]["field"] == "envs"
    make_token(client, "deployer", "deployer", ["prod"])
    dup = client.post("/auth/tokens", json={"name": "deployer", "role": "reader"})
    assert dup.status_code == 409
    whoami = client.get("/auth/whoami").json()
    assert whoami["role"] == "admin"
    names = [t["name"] for t in client.get("/auth/tokens").json()["tokens"]]
    assert "deployer" in names
    assert client.delete("/auth/tokens/deployer").status_code == 204
    assert client.delete("/auth/tokens/deployer").status_code == 404


def test_processes_of_one_home_share_the_internal_token(runtime: Runtime) -> None:
    from klink.auth import tokens

    second = Runtime.open(runtime.settings)
    try:
        assert second.internal_token == runtime.internal_token
        assert tokens.verify(runtime.engine, runtime.internal_token).role == "admin"
    finally:
        second.close()
    path = runtime.settings.home / "internal-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.unlink()
    third = Runtime.open(runtime.settings)
    try:
        assert third.internal_token != runtime.internal_token
        assert path.read_text().strip() == third.internal_token
    finally:
        third.close()
