"""Hubot's front door: ``POST /chat/hubot``, for the Hubot script in ``integrations/hubot/``.

The script forwards a ``klink …`` message as JSON (``{"user": {"id", "name"}, "room",
"text"}``) signed like Slack's requests, with ``KLINK_HUBOT_SECRET``: ``X-Klink-Signature:
v0=HMAC-SHA256(secret, "v0:{timestamp}:{raw body}")`` and ``X-Klink-Request-Timestamp``
(more than five minutes away: refused). Without the secret the endpoint does not exist (404);
a bad signature is a 401 and nothing runs. The answer is a stream of JSON lines, which the
script posts to the room as they come: ``{"type": "status", "text"}`` (who runs what),
``{"type": "progress", "text"}`` with new output while the command runs, then one
``{"type": "done", "ok", "text", "private"}`` (``private``: for that user only: help, a link
code, a refusal).
"""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from klink.chat import commands, signing
from klink.chat.commands import Outcome
from klink.errors import InvalidInput
from klink.service.auth import runtime_of
from klink.service.openapi import errors

PROG = "klink"
TIMESTAMP_HEADER = "x-klink-request-timestamp"
SIGNATURE_HEADER = "x-klink-signature"
# Signed by the sender (no token): 401 when the signature or its time is wrong, 404 when
# this front door has no secret set here, 413 for a body over the limit.
SIGNED = errors(401, 404, 413)
router = APIRouter(tags=["hubot"])


class HubotReply:
    """Output as JSON lines on a queue, read by the streaming answer."""

    def __init__(self) -> None:
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.sent = 0

    def start(self) -> None:
        pass  # the header line was queued with the answer's first bytes

    def progress(self, text: str) -> None:
        new = text[self.sent :]
        if new.strip():
            self.lines.put({"type": "progress", "text": new.rstrip("\n")})
        self.sent = len(text)

    def finish(self, outcome: Outcome) -> None:
        self.progress(outcome.output)  # what was not shown yet
        summary = "done" if outcome.ok else "failed"
        self.lines.put({"type": "done", "ok": outcome.ok, "text": summary, "private": False})
        self.lines.put(None)

    def stream(self) -> Iterator[bytes]:
        while True:
            line = self.lines.get()
            if line is None:
                return
            yield (json.dumps(line) + "\n").encode()


@router.post("/hubot", responses=SIGNED)
async def hubot(request: Request) -> StreamingResponse:
    runtime = runtime_of(request)
    body = await signing.verified_body(
        request,
        runtime.settings.hubot_secret,
        "KLINK_HUBOT_SECRET",
        TIMESTAMP_HEADER,
        SIGNATURE_HEADER,
    )
    try:
        message = json.loads(body)
        user = str(message["user"]["id"])
        text = str(message["text"])
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("expected {user: {id}, room, text}", field="user") from None
    if not user:
        raise InvalidInput("user.id is empty", field="user.id")
    decided = await run_in_threadpool(commands.decide, runtime, f"hubot:{user}", text, PROG)
    reply = HubotReply()
    if isinstance(decided, Outcome):
        reply.lines.put(
            {"type": "done", "ok": decided.ok, "text": decided.text, "private": decided.private}
        )
        reply.lines.put(None)
    else:
        header = f"`{PROG} {decided.line}` by {decided.caller.principal.actor}: running…"
        reply.lines.put({"type": "status", "text": header})
        request.app.state.chat_runner.start(decided, reply)
    return StreamingResponse(reply.stream(), media_type="application/x-ndjson")
