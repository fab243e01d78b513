"""The input policy at the service boundary: every service's app gets it from ``make_service``.

A pure ASGI middleware that wraps ``receive``. By the time a route reads its body the router
has put the route in the scope, so the policy knows what the body is for:

- a route that FastAPI parses (it has a body model) gets its body whole, at most
  ``KLINK_MAX_BODY_BYTES`` (1 MiB by default; 413 beyond, before reading when
  ``Content-Length`` says so), and a JSON body must pass ``klink.limits`` (depth, Unicode,
  finite numbers in range) and the model's strict types (an integer is never ``"1"`` or
  ``true``, a boolean never ``"yes"`` or ``1``): 400 naming the field otherwise;
- a route that reads its own stream (artifact uploads, git's smart HTTP) streams on: those
  bodies go to disk or to git, never into memory, and their own checks bound them.

A refusal is answered by the policy itself, in the JSON error shape naming the field, and the
route is told that the client went away (its own answer is dropped): that holds whatever other
middleware sits in between. ``json_http_error`` answers every Starlette HTTPException (404,
405) in the same shape; the combined server uses it too, so that a path no service knows
(``/metadata%0A``) gets a JSON 404.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from klink import limits
from klink.errors import InvalidInput

_CODES = {
    400: "invalid",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
}
# Pydantic error types that lax validation would coerce away: "1", true or 1.0 → 1, "yes" → True.
_STRICT_TYPES = frozenset({"int_type", "bool_type", "float_type"})


class Refused(HTTPException):
    """A body the policy refuses: status, code, message and the field it names."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(status, message)
        self.code = code
        self.field = field


def error_body(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status)


async def json_http_error(_request: Request, exc: Exception) -> JSONResponse:
    """Any Starlette HTTPException (404, 405, 413, a refusal) in the JSON error shape."""
    assert isinstance(exc, HTTPException)
    code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "http_error")
    response = error_body(exc.status_code, code, str(exc.detail), getattr(exc, "field", None))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _is_json(content_type: str | None) -> bool:
    # What FastAPI parses as JSON (strict content type): application/json, application/*+json.
    if not content_type:
        return False
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def _body_model(route: Any) -> type[Any] | None:
    """The pydantic model a FastAPI route parses its body into (unwrapping ``X | None``)."""
    from pydantic import BaseModel

    field = getattr(route, "body_field", None)
    if field is None:
        return None
    annotation = field.field_info.annotation
    candidates = (
        typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType)
        else (annotation,)
    )
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _has_coercible_fields(model: Any) -> bool:
    """Whether ``model`` (nested models included) declares an integer, number or boolean:
    only then can lax validation coerce; a body of free JSON is not validated twice."""
    try:
        schema = json.dumps(model.model_json_schema())
    except Exception:  # a schema pydantic cannot describe: check it anyway
        return True
    return any(f'"type": "{kind}"' in schema for kind in ("integer", "number", "boolean"))


_COERCIBLE: dict[str, bool] = {}  # by the model's qualified name and id: models live forever


def _coercible(model: type[Any]) -> bool:
    key = f"{model.__module__}.{model.__qualname__}:{id(model)}"
    found = _COERCIBLE.get(key)
    if found is None:
        found = _COERCIBLE[key] = _has_coercible_fields(model)
    return found


def _strict_problems(model: type[Any], raw: bytes) -> list[tuple[str | None, str]]:
    from pydantic import ValidationError

    if not _coercible(model):
        return []

    try:
        model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        return [
            (limits.path_of(tuple(error["loc"])) or None, str(error["msg"]))
            for error in exc.errors(include_url=False)
            if error["type"] in _STRICT_TYPES and isinstance(error.get("input"), str | int | float)
        ]
    return []


def check_body(route: Any, content_type: str | None, raw: bytes) -> None:
    """Refused (400) unless ``raw`` passes the JSON policy and the route model's strict types."""
    if not raw or not _is_json(content_type):
        return  # FastAPI itself answers a missing or non-JSON body
    try:
        limits.check_raw(raw)
    except InvalidInput as exc:
        raise Refused(400, exc.code, exc.message, exc.field) from None
    model = _body_model(route)
    if model is None:
        return
    problems = _strict_problems(model, raw)
    if problems:
        message = "; ".join(f"{field or 'body'}: {msg}" for field, msg in problems)
        raise Refused(400, "invalid", message, problems[0][0])


class InputPolicy:
    """The middleware; ``max_body_bytes`` bounds every body a route parses."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        delivered = responded = False

        async def policed() -> Message:
            nonlocal delivered, responded
            route = scope.get("route")
            if delivered or getattr(route, "body_field", None) is None:
                return await receive()
            delivered = True
            headers = Request(scope).headers
            try:
                body = await self._read(receive, headers.get("content-length"))
                check_body(route, headers.get("content-type"), body)
            except Refused as refused:
                # Answer here and tell the route the client left: raising instead would reach
                # FastAPI wrapped in the ExceptionGroup of any BaseHTTPMiddleware in between.
                response = error_body(
                    refused.status_code, refused.code, str(refused.detail), refused.field
                )
                await response(scope, receive, send)
                responded = True
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": body, "more_body": False}

        async def guarded_send(message: Message) -> None:
            if not responded:  # the route's own answer to the "disconnect" is not sent
                await send(message)

        await self.app(scope, policed, guarded_send)

    async def _read(self, receive: Receive, length: str | None) -> bytes:
        limit = self.max_body_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Refused(400, "disconnected", "the client went away while sending the body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> Refused:
        return Refused(
            413,
            "too_large",
            f"the request body is larger than {self.max_body_bytes} bytes (KLINK_MAX_BODY_BYTES)",
        )
