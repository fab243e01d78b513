"""The OpenAPI document of every service, made to say what the service really answers.

FastAPI documents a 422 for every route that takes input, which Klink never sends (bad input is
a 400, see ``app.py``), and none of the errors Klink does send. ``install(app)`` replaces the
app's ``openapi()`` with one that rewrites each operation once, when it is first asked for:

- the 422 and its ``HTTPValidationError`` schemas go; ``ErrorBody``
  (``{"error": {"code", "message", "field"?}}``) is the body of every error response;
- 400 for an operation that takes a parameter or a body; 413 for one that takes a body;
- 401 for one that needs a token; 403 for one that needs more than ``reader`` (every valid
  token can read);
- 404 for one with path parameters: the thing they name may not exist;
- path and query parameters named ``app`` or ``env`` carry the name rule of ``klink.names``,
  path ones an example too (``search``, ``prod``: the names the docs use);
- statuses a route declares itself (``responses=errors(409, 502)``) get the same body schema;
- ``/healthcheck`` documents its 500 (a dependency failed) with the health body.

Inference keeps the declarations in the routes short and the same everywhere; what inference
cannot know (a 409, a 502 from the cloud, a 201 of an upsert) the route declares. The deploy
service's routes are described by ``_DECLARED`` below until its API declares them itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from klink.names import NAME_RULE


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable reason, e.g. invalid, not_found, conflict")
    message: str = Field(description="what went wrong, for a person")
    field: str | None = Field(default=None, description="the input at fault, when one is")


class ErrorBody(BaseModel):
    """Every error Klink answers, whatever the status."""

    error: ErrorDetail


DESCRIPTIONS: dict[int, str] = {
    400: "Bad input: the error names the field and the reason",
    401: "No token, or a token that is not valid",
    403: "The token's role or environments do not allow this",
    404: "What the path names does not exist",
    409: "Conflicts with the current state: exists, in use, in progress or locked",
    413: "The request body is larger than the server accepts",
    500: "An unexpected error (the server log has the details)",
    502: "The cloud, git or another Klink service failed; the message is theirs",
    503: "The cloud kept throttling after the bounded retries",
}

NAME_RULES: dict[str, str] = {"app": NAME_RULE, "env": NAME_RULE}
PATH_EXAMPLES: dict[str, str] = {"app": "search", "env": "prod"}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_HEALTH = {
    "type": "object",
    "required": ["name", "version", "success", "dependencies"],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "string"},
        "success": {"type": "boolean"},
        "dependencies": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "success"],
                "properties": {"name": {"type": "string"}, "success": {"type": "boolean"}},
            },
        },
    },
}

# What the deploy service's routes answer beyond inference: (method, path) -> statuses.
# deploy/api.py is being rewritten; these move into its routes' ``responses=`` after that.
_DEPLOY_CONTROL = (409,)
_DECLARED: dict[str, dict[tuple[str, str], tuple[int, ...]]] = {
    "deploy": {
        ("post", "/{app}/{env}"): (201, 409, 502),
        ("post", "/{app}/{env}/rollback"): (201, 409, 502),
        ("post", "/{app}/{env}/redeploy"): (201, 409, 502),
        ("post", "/{app}/{env}/pause"): _DEPLOY_CONTROL,
        ("post", "/{app}/{env}/resume"): _DEPLOY_CONTROL,
        ("post", "/{app}/{env}/cancel"): _DEPLOY_CONTROL,
        ("post", "/{app}/{env}/retry"): _DEPLOY_CONTROL,
        ("post", "/{app}/{env}/undo"): (409, 502),
        ("post", "/{app}/{env}/unlock"): _DEPLOY_CONTROL,
        ("post", "/{app}/{env}/resize"): (409, 502),
        ("get", "/{app}/{env}/images"): (502,),
        ("get", "/{app}/{env}/boxes"): (502,),
    }
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with its description and the error body."""
    return {
        status: {"description": DESCRIPTIONS[status], "model": ErrorBody} for status in statuses
    }


def _calls(dependant: Dependant) -> Iterable[Callable[..., Any]]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)


def _auth_statuses(route: APIRoute) -> tuple[int, ...]:
    from klink.service import auth

    calls = set(_calls(route.dependant))
    if calls & {auth.deployer, auth.admin}:
        return (401, 403)
    if calls & {auth.reader, auth.current_principal}:
        return (401,)
    return ()


def _inferred(route: APIRoute, operation: dict[str, Any]) -> set[int]:
    statuses = set(_auth_statuses(route))
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation:
        statuses.add(400)
    if "requestBody" in operation:
        statuses.add(413)
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    return statuses


def _error_response(status: int, existing: dict[str, Any] | None) -> dict[str, Any]:
    response = dict(existing or {})
    response.setdefault("description", DESCRIPTIONS.get(status, "Error"))
    response["content"] = {"application/json": {"schema": _ERROR_REF}}
    return response


def _constrain(schema: dict[str, Any], rule: str) -> None:
    """Put the name rule on the string form of ``schema`` (an optional one is an anyOf)."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "string":
            branch.setdefault("pattern", rule)
            branch.setdefault("maxLength", 32)


def _rewrite(service: str, route: APIRoute, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    declared = _DECLARED.get(service, {}).get((method, route.path), ())
    for status in sorted(_inferred(route, operation) | set(declared)):
        if status < 400:
            success = {**responses.get("200", {}), "description": "Created"}
            responses.setdefault(str(status), success)
            continue
        responses[str(status)] = _error_response(status, responses.get(str(status)))
    for code, response in list(responses.items()):
        if code.isdigit() and int(code) >= 400:
            responses[code] = _error_response(int(code), response)
    for parameter in operation.get("parameters", []):
        rule = NAME_RULES.get(parameter.get("name", ""))
        if parameter.get("in") in ("path", "query") and rule is not None:
            _constrain(parameter.setdefault("schema", {}), rule)
            if parameter["in"] == "path":
                parameter.setdefault("example", PATH_EXAMPLES[parameter["name"]])
    if route.path == "/healthcheck":
        ok = {"application/json": {"schema": _HEALTH}}
        responses["200"] = {"description": "Every dependency answers", "content": ok}
        responses["500"] = {"description": "A dependency failed (named in the body)", "content": ok}


def _api_routes(routes: Iterable[Any]) -> Iterable[APIRoute]:
    """Every APIRoute, including those of routers that FastAPI keeps included by reference
    (its ``_IncludedRouter``; Klink includes routers without a prefix, so paths are theirs)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)


def document(app: FastAPI, service: str) -> dict[str, Any]:
    """The rewritten OpenAPI document of ``app`` (built once, then cached by FastAPI)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    spec = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        servers=app.servers,
    )
    for route in _api_routes(app.routes):
        if not route.include_in_schema:
            continue
        item = spec.get("paths", {}).get(route.path_format, {})
        for method in route.methods or ():
            operation = item.get(method.lower())
            if operation is not None:
                _rewrite(service, route, method.lower(), operation)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(body.pop("$defs", {}))
    schemas["ErrorBody"] = body
    app.openapi_schema = spec
    return spec


def install(app: FastAPI, service: str) -> None:
    """Serve the rewritten document at the app's ``/openapi.json``."""

    def openapi() -> dict[str, Any]:
        return document(app, service)

    app.openapi = openapi  # type: ignore[method-assign]
