"""``make_service``: the app factory behind every Klink service.

A service is a FastAPI app built from its routers, with what every service has:
``GET /healthcheck`` (``{name, version, success, dependencies}``, 200 or 500), ``GET /ping``,
Prometheus ``GET /metrics``, ``/openapi.json``, and one error shape
``{"error": {"code", "message", "field"?}}`` for everything that goes wrong: Klink's errors
carry their status; bad JSON and bad fields are 400 naming the field; an unexpected exception
is a 500 with no traceback in the body (the traceback goes to the log).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from klink import __version__
from klink.errors import KlinkError
from klink.service import audit, openapi
from klink.service.health import HealthCheck, checks_of
from klink.service.limits import InputPolicy, json_http_error
from klink.service.runtime import Runtime

log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status)


def _field_of(loc: Sequence[Any]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(KlinkError)
    async def klink_error(_request: Request, exc: KlinkError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            return _error(400, "invalid_json", f"the body is not valid JSON: {first.get('msg')}")
        field = _field_of(first.get("loc", ()))
        messages = [f"{_field_of(e.get('loc', ())) or 'body'}: {e.get('msg')}" for e in errors]
        return _error(400, "invalid", "; ".join(messages), field)

    app.add_exception_handler(StarletteHTTPException, json_http_error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal", f"internal error ({type(exc).__name__}); see the server log")


def _install_metrics(app: FastAPI, name: str) -> None:
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    registry = CollectorRegistry()
    requests = Counter(
        "klink_http_requests",
        "HTTP requests handled",
        ["service", "method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "klink_http_request_seconds",
        "HTTP request latency",
        ["service", "method", "route"],
        registry=registry,
    )
    app.state.metrics_registry = registry

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Any]) -> Response:
        start = time.perf_counter()
        response: Response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        latency.labels(name, request.method, path).observe(time.perf_counter() - start)
        requests.labels(name, request.method, path, str(response.status_code)).inc()
        return response

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def make_service(
    name: str,
    runtime: Runtime,
    routers: Sequence[APIRouter],
    *,
    checks: Sequence[HealthCheck] = (),
    on_start: Sequence[Callable[[], None]] = (),
    on_stop: Sequence[Callable[[], None]] = (),
    description: str = "",
) -> FastAPI:
    """Build service ``name``. ``on_start``/``on_stop`` run in the app's lifespan (the
    combined server runs every mounted service's lifespan)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        for start in on_start:
            start()
        try:
            yield
        finally:
            for stop in reversed(on_stop):
                try:
                    stop()
                except Exception:
                    log.exception("stopping %s", name)

    app = FastAPI(
        title=f"klink {name}",
        version=__version__,
        description=description,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.service_name = name
    _install_error_handlers(app)
    _install_metrics(app, name)
    app.add_middleware(InputPolicy, max_body_bytes=runtime.settings.max_body_bytes)
    all_checks = checks_of(name, runtime, checks)

    @app.get("/healthcheck", tags=["health"])
    def healthcheck() -> JSONResponse:
        results = []
        for check in all_checks:
            results.append({"name": check.name, "success": check.check()})
        success = all(r["success"] for r in results)
        body = {"name": name, "version": __version__, "success": success, "dependencies": results}
        return JSONResponse(body, status_code=200 if success else 500)

    @app.get("/ping", tags=["health"], response_class=PlainTextResponse)
    def ping() -> str:
        return "pong"

    for router in routers:
        app.include_router(router)
    openapi.install(app, name)
    audit.install(app, name, runtime)
    return app
