"""FastAPI dependencies for authentication: ``Depends(reader)``, ``Depends(admin)``.

A token comes as ``Authorization: Bearer TOKEN`` or, for git over HTTP, as the password of
HTTP basic auth. Deploy-style checks (``deployer`` on one env) use ``principal.require_deploy``.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from klink.auth import tokens
from klink.auth.tokens import Principal
from klink.service.runtime import Runtime


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
    principal = tokens.verify(runtime_of(request).engine, token)
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
