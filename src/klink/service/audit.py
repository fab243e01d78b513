"""The audit log at the service boundary: every mutating request of every service, recorded once.

``install`` wraps a service's app in ``AuditMiddleware`` (an ASGI middleware, so streamed
answers such as builds and bakes pass through untouched). For each POST, PUT, PATCH or DELETE
it records who asked (the token's name that ``current_principal`` verified, null without a
valid token), for whom (``Principal.via``: a front door acting
for a person sets it; null otherwise), the action (method and route template, e.g.
``PUT /metadata/applications/{name}``), the target (the path, never the query), the outcome
(the status, 4xx and 5xx included) and the time the request came in. A route refines its entry
with ``describe`` (the git server names a push and what it moved) or leaves the log with
``skip`` (a POST that only reads). The CLI calls the API, so the CLI's changes are recorded
here too. Bodies are never read, so no secret reaches the log. A failure to write the log is
logged and does not change the answer. The entry is written before the last part of the answer
is sent, so a client that has its answer finds the entry (read your own writes); when the app
raises before answering, it is written as the request ends.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

    from klink.service.runtime import Runtime

log = logging.getLogger(__name__)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# POST routes that only read: (service, route template).
READ_ONLY = frozenset({("config", "/validate")})
_KEY = "klink_audit"


def describe(
    request: Request,
    *,
    action: str | None = None,
    target: str | None = None,
    outcome: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Refine this request's entry (any argument left None keeps what the middleware saw)."""
    entry: dict[str, Any] = request.scope.setdefault("state", {}).setdefault(_KEY, {})
    given = {"action": action, "target": target, "outcome": outcome, "detail": detail}
    entry.update({k: v for k, v in given.items() if v is not None})


def skip(request: Request) -> None:
    """Leave this request out of the log (it changed nothing)."""
    describe(request)
    request.scope["state"][_KEY]["skip"] = True


class AuditMiddleware:
    def __init__(self, app: ASGIApp, *, service: str, runtime: Runtime) -> None:
        self.app = app
        self.service = service
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        at = self.runtime.clock()
        status = 500  # what the client gets when the app raises before answering
        recorded = False

        async def sending(message: Message) -> None:
            nonlocal status, recorded
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                recorded = True
                await self._record(scope, at, status)
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if not recorded:
                await self._record(scope, at, status)

    async def _record(self, scope: Scope, at: Any, status: int) -> None:
        from klink.auth.audit import Entry, record

        state: dict[str, Any] = scope.get("state") or {}
        given: dict[str, Any] = state.get(_KEY, {})
        route = getattr(scope.get("route"), "path", None)
        if given.get("skip") or (self.service, route) in READ_ONLY:
            return
        principal = state.get("principal")
        prefix = f"/{self.service}"
        action = f"{scope['method']} {prefix}{route}" if route else f"{scope['method']} (no route)"
        entry = Entry(
            at=at,
            actor=getattr(principal, "name", None),
            on_behalf_of=getattr(principal, "via", None),
            action=given.get("action", action),
            target=given.get("target", prefix + _path_in_service(scope)),
            outcome=int(given.get("outcome", status)),
            detail=given.get("detail"),
        )
        try:
            await anyio.to_thread.run_sync(record, self.runtime.engine, entry)
        except Exception:
            log.exception("could not record %s %s in the audit log", entry.action, entry.target)


def _path_in_service(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    # Mounted, Starlette keeps the full path and names the mount in root_path.
    return path[len(root) :] if root and path.startswith(root) else path


def install(app: FastAPI, service: str, runtime: Runtime) -> None:
    app.add_middleware(AuditMiddleware, service=service, runtime=runtime)
