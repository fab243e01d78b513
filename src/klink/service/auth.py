"""FastAPI dependencies for authentication: ``Depends(reader)``, ``Depends(admin)``.

A token comes as ``Authorization: Bearer TOKEN`` or, for git over HTTP, as the password of
HTTP basic auth. Deploy-style checks (``deployer`` on one env) use ``principal.require_deploy``.

Acting on someone's behalf: Klink's internal token with ``X-Klink-Act-As: IDENTITY`` (a token's
name) and ``X-Klink-Via: CHAT-USER`` is that identity, with its role and environments, and
``principal.via`` set (``principal.actor``: ``IDENTITY via CHAT-USER``); ``X-Klink-Via`` alone
is an unlinked chat user, who may only read. Any other token sending these headers is refused.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from klink.auth import tokens
from klink.auth.tokens import Principal
from klink.service.runtime import Runtime

ACT_AS_HEADER = "X-Klink-Act-As"
VIA_HEADER = "X-Klink-Via"


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def token_from_header(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, credentials = value.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return credentials.strip() or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        _user, _, password = decoded.partition(":")
        return password or None
    return None


def current_principal(request: Request) -> Principal:
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    token = token_from_header(request.headers.get("authorization"))
    engine = runtime_of(request).engine
    principal = tokens.verify(engine, token)
    identity = request.headers.get(ACT_AS_HEADER)
    via = request.headers.get(VIA_HEADER)
    if identity is not None or via is not None:
        principal = tokens.act_as(engine, principal, identity, via or "")
    request.state.principal = principal
    return principal


def reader(request: Request) -> Principal:
    principal = current_principal(request)
    principal.require("reader")
    return principal


def deployer(request: Request) -> Principal:
    principal = current_principal(request)
    principal.require("deployer")
    return principal


def admin(request: Request) -> Principal:
    principal = current_principal(request)
    principal.require("admin")
    return principal
