"""The chat service (``/chat``): Slack and Hubot front doors, and linking chat users.

``POST /chat/link`` (``klink chat link CODE``) confirms a code shown to a chat user, with the
caller's own token: that chat user then acts as the token's identity. The front doors are in
``slack.py`` and ``hubot.py``; what a message means and how it runs is ``commands.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, Field

from klink.auth.tokens import Principal
from klink.chat import commands, hubot, links, slack
from klink.errors import Forbidden
from klink.service import Runtime, current_principal, make_service, runtime_of
from klink.service.runtime import INTERNAL_TOKEN_NAME


class LinkRequest(BaseModel):
    code: str = Field(min_length=4, max_length=20)


router = APIRouter(tags=["links"])


@router.post("/link")
def link(
    body: LinkRequest,
    request: Request,
    principal: Annotated[Principal, Depends(current_principal)],
) -> dict[str, Any]:
    if principal.via is not None or principal.name == INTERNAL_TOKEN_NAME:
        raise Forbidden("link with your own token, from a terminal", field="Authorization")
    runtime = runtime_of(request)
    chat_user = links.confirm(runtime.engine, body.code, principal.name, runtime.clock())
    return {
        "chatUser": chat_user,
        "identity": principal.name,
        "role": principal.role,
        "envs": principal.envs,
    }


def create_app(runtime: Runtime) -> FastAPI:
    app = make_service(
        "chat",
        runtime,
        [router, slack.router, hubot.router],
        description="Slack and Hubot: Klink's verbs from chat rooms, as the linked identity",
    )
    app.state.chat_runner = commands.Runner(runtime)
    return app
