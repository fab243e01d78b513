"""The input policy every service shares: bounded bodies, bounded depth, valid Unicode, finite
numbers in range; errors (404s included) in the JSON error shape; nothing stored that would
break a later read."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from klink.server import create_app
from klink.service.runtime import Runtime
from tests.conftest import LiveServer, make_settings

JSON = {"content-type": "application/json"}


def _error(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    error: dict[str, Any] = response.json()["error"]
    assert set(error) <= {"code", "message", "field"}
    assert error["code"]
    assert error["message"]
    if field is not None:
        assert error.get("field") == field, error
    return error


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (rb'{"metadata": {"contact": "a@b.c", "x": "\ud800"}}', "metadata.x"),
        (rb'{"metadata": {"contact": "a@b.c", "x": ["ok", "\udfff tail"]}}', "metadata.x[1]"),
        (rb'{"metadata": {"contact": "a@b.c", "\ud800key": 1}}', "metadata"),
        (b'{"metadata": {"contact": "a@b.c", "x": "\xed\xa0\x80"}}', None),  # a raw surrogate
    ],
)
def test_a_lone_surrogate_is_refused_and_not_stored(
    client: TestClient, raw: bytes, field: str | None
) -> None:
    _error(client.put("/metadata/applications/search", content=raw, headers=JSON), 400, field)
    _error(client.get("/metadata/applications/search"), 404)
    assert client.get("/metadata/applications", params={"view": "full"}).status_code == 200


def test_a_lone_surrogate_in_an_environment_key_is_refused(live_server: LiveServer) -> None:
    with live_server.client() as http:
        body = {"metadata": {"provider": "local"}}
        assert http.put("/metadata/environments/poke", json=body).status_code == 201
        raw = rb'{"value": {"\ud800": true}}'
        _error(http.put("/metadata/environments/poke/extra", content=raw, headers=JSON), 400)
        assert http.get("/metadata/environments/poke").json()["metadata"] == body["metadata"]
        # Bake's targets read every environment: one bad key would break them for every app.
        assert http.get("/bake/targets").status_code == 200


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_json_depth_is_bounded(client: TestClient) -> None:
    # The envelope {"metadata": {"x": ...}} is two levels: 62 more is the limit of 64.
    ok = f'{{"metadata": {{"contact": "a@b.c", "x": {_nested(62)}}}}}'
    assert client.put("/metadata/applications/ok", content=ok, headers=JSON).status_code == 201
    assert client.get("/metadata/applications/ok").status_code == 200
    for depth in (63, 300, 100_000):
        raw = f'{{"metadata": {{"contact": "a@b.c", "x": {_nested(depth)}}}}}'
        error = _error(client.put("/metadata/applications/deep", content=raw, headers=JSON), 400)
        assert "deep" in error["message"]
    _error(client.get("/metadata/applications/deep"), 404)
    assert client.get("/metadata/applications/ok/history").status_code == 200


@pytest.mark.parametrize(
    "number",
    ["NaN", "Infinity", "-Infinity", "1e999", "-1e400", str(2**63), str(-(2**63) - 1), "1" * 5000],
)
def test_numbers_are_finite_and_in_range(client: TestClient, number: str) -> None:
    raw = f'{{"metadata": {{"contact": "a@b.c", "x": {number}}}}}'
    _error(client.put("/metadata/applications/num", content=raw, headers=JSON), 400)
    _error(client.get("/metadata/applications/num"), 404)


def test_numbers_at_the_limits_are_kept(client: TestClient) -> None:
    raw = f'{{"metadata": {{"contact": "a@b.c", "big": {2**63 - 1}, "f": 1.5e308}}}}'
    assert client.put("/metadata/applications/num", content=raw, headers=JSON).status_code == 201
    metadata = client.get("/metadata/applications/num").json()["metadata"]
    assert metadata["big"] == 2**63 - 1
    assert metadata["f"] == 1.5e308


def test_a_body_over_the_limit_is_413(client: TestClient) -> None:
    value = "x" * (1024 * 1024)
    response = client.put(
        "/metadata/applications/big", json={"metadata": {"contact": "a@b.c", "x": value}}
    )
    _error(response, 413)
    _error(client.get("/metadata/applications/big"), 404)


def test_a_chunked_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"metadata": {"contact": "a@b.c", "x": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}}'

    response = client.put("/metadata/applications/big", content=chunks(), headers=JSON)
    _error(response, 413)
    _error(client.get("/metadata/applications/big"), 404)


def test_the_body_limit_is_a_setting(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", KLINK_MAX_BODY_BYTES="2048")
    assert settings.max_body_bytes == 2048
    runtime = Runtime.open(settings)
    try:
        token = settings.admin_token_path.read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        with TestClient(create_app(runtime), headers=headers) as c:
            small = {"metadata": {"contact": "a@b.c", "x": "y" * 1000}}
            assert c.put("/metadata/applications/small", json=small).status_code == 201
            big = {"metadata": {"contact": "a@b.c", "x": "y" * 3000}}
            _error(c.put("/metadata/applications/big", json=big), 413)
    finally:
        runtime.close()


def test_streamed_uploads_are_not_held_to_the_json_limit(live_server: LiveServer) -> None:
    # An artifact (and a git push) streams to disk: the 1 MiB bound is for parsed bodies.
    with live_server.client() as http:
        body = {"metadata": {"contact": "a@b.c"}}
        assert http.put("/metadata/applications/search", json=body).status_code == 201
        data = b"\x1f\x8b" + b"z" * (3 * 1024 * 1024)
        digest = hashlib.sha256(data).hexdigest()
        response = http.put(f"/build/artifacts/search/1.0.1?sha256={digest}", content=data)
        assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "path",
    ["/metadata%0A", "/nothing", "/metadata/nothing", "/metadata/applications/a%0A/b/c/d"],
)
def test_every_404_has_the_json_shape(client: TestClient, path: str) -> None:
    _error(client.get(path), 404)


def test_a_405_has_the_json_shape(client: TestClient) -> None:
    _error(client.patch("/metadata/applications"), 405)


def test_deployment_logs_since_out_of_range_is_400(client: TestClient) -> None:
    response = client.get(
        "/deploy/deployments/d-1/logs", params={"since": "99999999999999999999999"}
    )
    _error(response, 400, "since")


def test_config_validate_of_deep_content_is_a_problem_not_a_500(client: TestClient) -> None:
    body = {"file": "deployment-params.json", "content": _nested(10_000)}
    response = client.post("/config/validate", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["valid"] is False
    assert "deep" in result["problems"][0]["message"]


def test_config_validate_of_a_lone_surrogate_is_a_problem(client: TestClient) -> None:
    body = {"file": "application-properties.json", "content": '{"a.b": "\\ud800"}'}
    result = client.post("/config/validate", json=body).json()
    assert result["valid"] is False
    assert result["problems"][0]["field"] == "a.b"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"min": "1", "max": 2, "desired": 1}, "min"),
        ({"min": 1, "max": True, "desired": 1}, "max"),
        ({"min": 1, "max": 2, "desired": 1.0}, "desired"),
    ],
)
def test_integers_are_not_strings_or_booleans(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    # Refused at the boundary, before the route looks the app and environment up.
    _error(client.post("/deploy/search/poke/resize", json=body), 400, field)


def test_booleans_are_not_strings_or_integers(client: TestClient) -> None:
    for value in ("true", 1):
        body = {"message": "go", "dryRun": value}
        _error(client.post("/deploy/search/poke", json=body), 400, "dryRun")


def _real_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_real_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_real_depth(v) for v in value), default=0)
    return 0


def test_the_fast_depth_count_agrees_with_a_walk_on_hostile_strings() -> None:
    # Brackets, quotes and backslashes inside strings must not count (the count runs at C
    # speed over the bytes, so it cannot parse).
    import json
    import random

    from klink.limits import _depth

    rng = random.Random(1)
    alphabet = ["[", "]", "{", "}", '"', "\\", "a", "\n", "é", '\\"', "\\\\", "\ud83d\ude00"]

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))

    def value(depth: int) -> Any:
        if depth > 6 or rng.random() < 0.3:
            return rng.choice([text(), 1, None, True, 2.5])
        if rng.random() < 0.5:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return {text(): value(depth + 1) for _ in range(rng.randint(0, 3))}

    for _ in range(2000):
        doc = value(0)
        for ascii_only in (True, False):
            raw = json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
            assert _depth(raw) == _real_depth(doc), raw
