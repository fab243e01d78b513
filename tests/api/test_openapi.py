"""Every service's OpenAPI document says what the service answers: the error statuses with the
error body, no 422 (Klink answers 400), name rules on app/env path parameters, streams as
streams. The fuzzer (``test_fuzz.py``) then holds the servers to these documents."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from klink.names import NAME_RULE
from klink.server import SERVICES

ERROR_REF = "#/components/schemas/ErrorBody"


@pytest.fixture
def documents(client: TestClient) -> dict[str, dict[str, Any]]:
    return {s: client.get(f"/{s}/openapi.json").json() for s in SERVICES}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_no_operation_documents_422_and_every_error_has_the_error_body(
    documents: dict[str, dict[str, Any]],
) -> None:
    for service, document in documents.items():
        assert "HTTPValidationError" not in document["components"]["schemas"], service
        for method, path, operation in operations(document):
            responses = operation["responses"]
            assert "422" not in responses, (service, method, path)
            for status, response in responses.items():
                if int(status) >= 400 and path != "/healthcheck":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": ERROR_REF}, (service, method, path, status)
        error = document["components"]["schemas"]["ErrorBody"]
        assert error["required"] == ["error"]
        detail = document["components"]["schemas"]["ErrorDetail"]
        assert set(detail["properties"]) == {"code", "message", "field"}
        assert set(detail["required"]) == {"code", "message"}


def test_input_auth_and_path_statuses_are_documented(
    documents: dict[str, dict[str, Any]],
) -> None:
    for service, document in documents.items():
        for method, path, operation in operations(document):
            statuses = set(operation["responses"])
            where = (service, method, path)
            if path in ("/healthcheck", "/ping"):
                assert not statuses & {"400", "401"}, where
                continue
            assert "401" in statuses, where  # every other route needs a token
            if operation.get("parameters") or "requestBody" in operation:
                assert "400" in statuses, where
            if "requestBody" in operation:
                assert "413" in statuses, where
            if "{" in path:
                assert "404" in statuses, where


@pytest.mark.parametrize(
    ("service", "method", "path", "statuses"),
    [
        ("auth", "POST", "/tokens", {"201", "400", "401", "403", "409"}),
        ("auth", "GET", "/tokens", {"200", "401", "403"}),
        ("auth", "GET", "/whoami", {"200", "401"}),
        ("auth", "GET", "/audit", {"200", "400", "401", "403"}),
        ("metadata", "PUT", "/applications/{name}", {"200", "201", "400", "401", "403", "404"}),
        ("metadata", "GET", "/applications", {"200", "400", "401"}),
        ("config", "POST", "/repos/{app}/{env}", {"200", "201", "400", "401", "403", "404"}),
        ("build", "PUT", "/artifacts/{app}/{version}", {"201", "400", "401", "403", "409"}),
        ("bake", "DELETE", "/images/{app}/{image}", {"204", "401", "403", "404", "409"}),
        ("deploy", "POST", "/{app}/{env}", {"200", "201", "400", "401", "403", "404", "409"}),
        ("deploy", "POST", "/{app}/{env}/pause", {"200", "401", "403", "404", "409"}),
        ("infra", "POST", "/{app}/{env}/apply", {"200", "401", "403", "404", "409", "502"}),
    ],
)
def test_route_statuses(
    documents: dict[str, dict[str, Any]],
    service: str,
    method: str,
    path: str,
    statuses: set[str],
) -> None:
    documented = set(documents[service]["paths"][path][method.lower()]["responses"])
    assert statuses <= documented, documented


def test_app_and_env_path_parameters_carry_the_name_rule(
    documents: dict[str, dict[str, Any]],
) -> None:
    seen = 0
    for service, document in documents.items():
        for method, path, operation in operations(document):
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in ("app", "env"):
                    assert parameter["schema"]["pattern"] == NAME_RULE, (service, method, path)
                    seen += 1
    assert seen > 40
    records = documents["metadata"]["paths"]["/environments/{name}/{key}"]["put"]
    by_name = {p["name"]: p["schema"] for p in records["parameters"]}
    assert by_name["name"]["pattern"] == NAME_RULE
    assert by_name["key"]["pattern"].startswith("^[A-Za-z]")


def test_streams_and_files_are_documented_as_what_they_are(
    documents: dict[str, dict[str, Any]],
) -> None:
    build = documents["build"]["paths"]
    assert "application/x-ndjson" in build["/builds/{app}"]["post"]["responses"]["200"]["content"]
    download = build["/artifacts/{app}/{version}/file"]["get"]["responses"]["200"]["content"]
    assert "application/gzip" in download
    bake = documents["bake"]["paths"]["/images/{app}/{version}"]["post"]["responses"]["200"]
    assert {"application/x-ndjson", "application/json"} <= set(bake["content"])
    health = documents["auth"]["paths"]["/healthcheck"]["get"]["responses"]
    assert health["500"]["content"]["application/json"]["schema"]["required"][0] == "name"


def test_query_filters_and_bodies_carry_the_name_rule(
    documents: dict[str, dict[str, Any]],
) -> None:
    listing = documents["deploy"]["paths"]["/deployments"]["get"]["parameters"]
    by_name = {p["name"]: p["schema"] for p in listing}
    for name in ("app", "env"):
        [string] = [b for b in by_name[name]["anyOf"] if b.get("type") == "string"]
        assert string["pattern"] == NAME_RULE
    request = documents["auth"]["components"]["schemas"]["TokenRequest"]["properties"]["envs"]
    [array] = [b for b in request["anyOf"] if b.get("type") == "array"]
    assert array["items"]["pattern"] == NAME_RULE
