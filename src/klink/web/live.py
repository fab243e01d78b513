"""Live views over Server-Sent Events: a deployment's page and the overview.

The engine persists a deployment after every action (bumping its ``updatedAt``), possibly in
another process, and the UI reads only through the deploy API; so each stream polls that API
every ``POLL`` seconds (one small read) and, when the deployment's fingerprint changed, sends
the freshly rendered part of the page as an SSE event, which htmx's SSE extension swaps in. An
action therefore shows up within ``POLL`` plus one render (≈ 0.2 s) of being persisted. A
page passes the fingerprint it was rendered from (``?since=``): the stream sends a first event
only if something changed in between, so nothing is lost and nothing flickers.

Events: ``deployment`` (the live part of a deployment page), then ``done`` once it is final
(the page closes the stream); ``overview`` (the overview's board). A comment every
``KEEPALIVE`` seconds lets a proxy or the browser notice a dead connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from klink.errors import KlinkError
from klink.web import pages, pages_deploy
from klink.web.reads import off, offloaded
from klink.web.render import html, reads_of, signed_in
from klink.web.session import Session
from klink.web.views import deployment_fingerprint, digest, overview_fingerprint

router = APIRouter(include_in_schema=False)
Visitor = Annotated[Session, Depends(signed_in)]
POLL = 0.15
KEEPALIVE = 15.0
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def event(name: str, data: str) -> bytes:
    """One SSE event; every line of ``data`` gets its own ``data:`` field."""
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {name}\n{lines}\n".encode()


async def _changes(
    request: Request,
    fingerprint: Callable[[], Any],
    render: Callable[[], list[bytes]],
    finished: Callable[[Any], bool] = lambda _f: False,
) -> AsyncIterator[bytes]:
    last: Any = request.query_params.get("since")
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        try:
            now = await off(fingerprint)
        except KlinkError as exc:
            if exc.status in (401, 403, 404):  # signed out, revoked or gone: nothing to follow
                return
            yield f": {exc.message}\n\n".encode()
            await asyncio.sleep(1.0)
            continue
        if now != last and digest(now) != last:
            last = now
            for chunk in await off(render):
                yield chunk
            quiet_since = time.monotonic()
            if finished(now):
                return
        elif time.monotonic() - quiet_since > KEEPALIVE:
            yield b": keepalive\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(POLL)


@router.get("/deployments/{deployment_id}/events")
@offloaded
def deployment_events(request: Request, deployment_id: str, session: Visitor) -> StreamingResponse:
    reads = reads_of(request, session)
    deployment_id = pages_deploy.checked_id(deployment_id)
    reads.deploy.deployment(deployment_id)  # 404 before the stream starts

    def fingerprint() -> tuple[Any, ...]:
        return deployment_fingerprint(reads.deploy.deployment(deployment_id))

    def render() -> list[bytes]:
        context = pages_deploy.deployment_context(reads, deployment_id)
        chunks = [event("deployment", html("deployment_live.html", **context))]
        if context["final"]:
            chunks.append(event("done", context["d"]["status"]))
        return chunks

    stream = _changes(
        request, fingerprint, render, lambda f: f[0] in ("completed", "invalid", "cancelled")
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)


@router.get("/events")
@offloaded
def overview_events(request: Request, session: Visitor) -> StreamingResponse:
    """The overview's board, again whenever a deployment starts, moves or ends."""
    reads = reads_of(request, session)

    def fingerprint() -> tuple[Any, ...]:
        return overview_fingerprint(reads.deploy.in_progress())

    def render() -> list[bytes]:
        context = pages.overview_context(reads)
        return [event("overview", html("overview_board.html", **context))]

    stream = _changes(request, fingerprint, render)
    return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)
