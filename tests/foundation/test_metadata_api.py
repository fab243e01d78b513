"""The metadata service through its real app: records, keys, history, filters, errors."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient


def create_app(client: TestClient, name: str = "search", **metadata: Any) -> Any:
    response = client.put(
        f"/metadata/applications/{name}", json={"metadata": {"contact": "ops@x.io", **metadata}}
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_create_read_list_delete(client: TestClient) -> None:
    record = create_app(client, "search", srcRepo="/src/search")
    assert record["name"] == "search"
    assert record["metadata"] == {"contact": "ops@x.io", "srcRepo": "/src/search"}
    create_app(client, "users")
    assert client.get("/metadata/applications").json() == {"applications": ["search", "users"]}
    full = client.get("/metadata/applications", params={"view": "full"}).json()["applications"]
    assert [a["metadata"]["contact"] for a in full] == ["ops@x.io", "ops@x.io"]
    assert client.delete("/metadata/applications/users").status_code == 204
    assert client.get("/metadata/applications/users").status_code == 404
    assert client.get("/metadata/applications").json() == {"applications": ["search"]}


def test_put_existing_replaces_and_returns_200(client: TestClient) -> None:
    create_app(client, "search", a=1)
    response = client.put(
        "/metadata/applications/search", json={"metadata": {"contact": "x@y.z", "b": 2}}
    )
    assert response.status_code == 200
    assert response.json()["metadata"] == {"contact": "x@y.z", "b": 2}


def test_one_property_at_a_time_with_history(client: TestClient) -> None:
    create_app(client)
    assert client.put(
        "/metadata/applications/search/owner", json={"value": {"team": "s"}}
    ).json() == {
        "key": "owner",
        "value": {"team": "s"},
    }
    client.put("/metadata/applications/search/owner", json={"value": {"team": "t"}})
    # Setting the same value again is not a change.
    client.put("/metadata/applications/search/owner", json={"value": {"team": "t"}})
    assert client.get("/metadata/applications/search/owner").json()["value"] == {"team": "t"}
    assert client.delete("/metadata/applications/search/owner").status_code == 204
    assert client.get("/metadata/applications/search/owner").status_code == 404
    history = client.get("/metadata/applications/search/history").json()["history"]
    assert [(h["key"], h["old"], h["new"], h["actor"]) for h in history] == [
        ("owner", {"team": "t"}, None, "admin"),
        ("owner", {"team": "s"}, {"team": "t"}, "admin"),
        ("owner", None, {"team": "s"}, "admin"),
        (None, None, {"contact": "ops@x.io"}, "admin"),
    ]
    assert all(h["at"].endswith("+00:00") for h in history)


def test_where_filter_on_top_level_property(client: TestClient) -> None:
    create_app(client, "a", tier=1)
    create_app(client, "b", tier=2)
    create_app(client, "c", tier="1")
    assert client.get("/metadata/applications", params={"where": "tier=1"}).json() == {
        "applications": ["a"]
    }
    assert client.get("/metadata/applications", params={"where": 'tier="1"'}).json() == {
        "applications": ["c"]
    }
    bad = client.get("/metadata/applications", params={"where": "tier"})
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "where"


def test_environments_have_typed_fields(client: TestClient) -> None:
    ok = client.put(
        "/metadata/environments/prod", json={"metadata": {"provider": "aws", "region": "eu-west-1"}}
    )
    assert ok.status_code == 201
    cases = [
        ({"region": "x"}, "provider"),
        ({"provider": "gcp"}, "provider"),
        ({"provider": "aws"}, "region"),
        ({"provider": "aws", "region": "r", "account_id": "12"}, "account_id"),
        ({"provider": "aws", "region": "r", "role_arn": "nope"}, "role_arn"),
        ({"provider": "aws", "region": "r", "endpoint_url": "ftp://x"}, "endpoint_url"),
        # Accepted by the URL pattern once, then unreadable to every later HTTP client.
        ({"provider": "aws", "region": "r", "endpoint_url": "http://[::1"}, "endpoint_url"),
        ({"provider": "local", "prometheusUrl": "http://h:99999"}, "prometheusUrl"),
        ({"provider": "local", "prometheusUrl": "prometheus:9090"}, "prometheusUrl"),
        ({"provider": "local", "createConfigRepo": "yes"}, "createConfigRepo"),
    ]
    for metadata, field in cases:
        response = client.put("/metadata/environments/poke", json={"metadata": metadata})
        assert response.status_code == 400, metadata
        assert response.json()["error"]["field"] == field, metadata
    assert client.get("/metadata/environments/poke").status_code == 404
    # Removing the provider of an existing environment is refused and changes nothing.
    assert client.delete("/metadata/environments/prod/provider").status_code == 400
    assert client.get("/metadata/environments/prod/provider").json()["value"] == "aws"


BAD_REQUESTS = [
    ("PUT", "/metadata/applications/Search", {"metadata": {}}, 400, "application"),
    ("PUT", "/metadata/applications/my-app", {"metadata": {}}, 400, "application"),
    ("PUT", "/metadata/applications/" + "a" * 33, {"metadata": {}}, 400, "application"),
    ("PUT", "/metadata/applications/ok", {"metadata": {"contact": "nobody"}}, 400, "contact"),
    ("PUT", "/metadata/applications/ok", {"metadata": []}, 400, "metadata"),
    ("PUT", "/metadata/applications/ok", {"metadata": {"blocked": "yes"}}, 400, "blocked"),
    ("PUT", "/metadata/applications/ok", {"metadata": {"bakeCommands": "x"}}, 400, "bakeCommands"),
    ("PUT", "/metadata/applications/ok", {"metadata": {"version": 3.14}}, 400, "version"),
    (
        "PUT",
        "/metadata/applications/ok",
        {"metadata": {"deploymentRooms": {"Prod": []}}},
        400,
        "deploymentRooms",
    ),
    ("PUT", "/metadata/applications/search/bad key", {"value": 1}, 400, "key"),
    ("PUT", "/metadata/applications/search/x", {"nothing": 1}, 400, "value"),
    ("PUT", "/metadata/applications/nosuch/x", {"value": 1}, 404, "application"),
    ("GET", "/metadata/applications/nosuch", None, 404, "application"),
    ("DELETE", "/metadata/applications/search/missing", None, 404, "key"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), BAD_REQUESTS)
def test_bad_input_gets_4xx_naming_the_field_and_changes_nothing(
    client: TestClient, method: str, path: str, body: Any, status: int, field: str
) -> None:
    create_app(client)
    before = client.get("/metadata/applications", params={"view": "full"}).json()
    response = client.request(method, path, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert error["message"]
    assert client.get("/metadata/applications", params={"view": "full"}).json() == before


def test_bad_json_is_400_not_500(client: TestClient) -> None:
    response = client.put(
        "/metadata/applications/search",
        content=b"{nope",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_unknown_route_is_json_404(client: TestClient) -> None:
    response = client.get("/metadata/nothing/here/at/all")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
