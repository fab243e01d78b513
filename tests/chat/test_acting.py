"""Acting on someone's behalf, in the auth layer: only the internal token may, and then it has
exactly the identity's rights (or a reader's, for an unlinked chat user)."""

from __future__ import annotations

from starlette.testclient import TestClient

from klink.service.runtime import Runtime


def test_acting_as(client: TestClient, runtime: Runtime) -> None:
    made = client.post("/auth/tokens", json={"name": "dee", "role": "deployer", "envs": ["poke"]})
    dee = made.json()["token"]
    internal = {"Authorization": f"Bearer {runtime.internal_token}"}
    via = {"X-Klink-Via": "hubot:U9"}
    app = {"metadata": {"contact": "a@b.c"}}

    # The internal token as dee: dee's role and environments, and who asked.
    as_dee = {**internal, **via, "X-Klink-Act-As": "dee"}
    who = client.get("/auth/whoami", headers=as_dee).json()
    assert (who["name"], who["role"], who["envs"], who["actor"]) == (
        "dee",
        "deployer",
        ["poke"],
        "dee via hubot:U9",
    )
    assert (
        client.post("/auth/tokens", json={"name": "x", "role": "admin"}, headers=as_dee).status_code
        == 403
    )
    # An unlinked chat user reads and does nothing else.
    unlinked = {**internal, **via}
    assert client.get("/auth/whoami", headers=unlinked).json()["role"] == "reader"
    assert client.get("/metadata/applications", headers=unlinked).status_code == 200
    assert client.put("/metadata/applications/s1", json=app, headers=unlinked).status_code == 403
    # Without the via header, acting is refused (every action names its chat user).
    no_via = {**internal, "X-Klink-Act-As": "dee"}
    assert client.get("/auth/whoami", headers=no_via).status_code == 400
    # Nobody acts as the internal token itself, nor as a name with no token.
    for name in ("klink", "nobody"):
        headers = {**internal, **via, "X-Klink-Act-As": name}
        assert client.get("/auth/whoami", headers=headers).status_code == 401
    # Only the internal token may act: not dee, not even the admin.
    for token in (dee, runtime.settings.admin_token_path.read_text().strip()):
        headers = {"Authorization": f"Bearer {token}", **via, "X-Klink-Act-As": "dee"}
        answer = client.get("/auth/whoami", headers=headers)
        assert answer.status_code == 403
        assert answer.json()["error"]["field"] == "X-Klink-Act-As"
    # Without the headers, the internal token is itself.
    assert client.get("/auth/whoami", headers=internal).json()["name"] == "klink"
