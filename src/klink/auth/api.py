"""The auth service (``/auth``): create, list and delete tokens (admin only); the audit log.

``GET /audit`` (admin) pages through the audit log newest first: filters ``actor``, ``action``
(exact), ``target`` (that path or below it) and ``since`` (ISO 8601), ``limit`` per page and
``before`` = the previous page's ``next``; the answer is ``{"entries": [...], "next": id|null}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from pydantic import BaseModel, Field

from klink.auth import audit, tokens
from klink.auth.tokens import Principal
from klink.errors import InvalidInput
from klink.names import NAME_RULE, check_name
from klink.service import Runtime, admin, current_principal, make_service, runtime_of
from klink.service.openapi import errors

TOKEN_NAME = r"^[a-z][a-z0-9._@-]{0,63}$"  # noqa: S105 - a name rule, not a secret


class TokenRequest(BaseModel):
    name: str = Field(pattern=TOKEN_NAME)
    role: str = Field(pattern="^(reader|deployer|admin)$")
    envs: list[Annotated[str, Field(json_schema_extra={"pattern": NAME_RULE})]] | None = Field(
        default=None, description="deployer only: the environments it may change"
    )


router = APIRouter(tags=["tokens"])


@router.post("/tokens", status_code=201, responses=errors(409))
def create_token(
    body: TokenRequest, request: Request, principal: Annotated[Principal, Depends(admin)]
) -> dict[str, Any]:
    runtime = runtime_of(request)
    envs = [check_name(e, "envs") for e in body.envs] if body.envs is not None else None
    token = tokens.create_token(
        runtime.engine,
        name=body.name,
        role=body.role,
        envs=envs,
        created_by=principal.name,
        now=runtime.clock(),
    )
    return {"name": body.name, "role": body.role, "envs": envs, "token": token}


@router.get("/tokens")
def list_tokens(
    request: Request, _principal: Annotated[Principal, Depends(admin)]
) -> dict[str, Any]:
    return {"tokens": tokens.list_tokens(runtime_of(request).engine)}


@router.delete("/tokens/{name}", status_code=204)
def delete_token(
    name: Annotated[str, Path(json_schema_extra={"pattern": TOKEN_NAME, "maxLength": 64})],
    request: Request,
    _principal: Annotated[Principal, Depends(admin)],
) -> None:
    tokens.delete_token(runtime_of(request).engine, name)


class AuditEntry(BaseModel):
    id: int
    at: str = Field(description="when the request came in (ISO 8601, UTC)")
    actor: str | None = Field(description="the token's name; null without a valid token")
    on_behalf_of: str | None = Field(description="the person a front door acted for, if any")
    action: str = Field(description='method and route, e.g. "POST /deploy/{app}/{env}"')
    target: str = Field(description="the path acted on")
    outcome: int = Field(description="the HTTP status answered")
    detail: dict[str, Any] | None = Field(description="what the route adds (a push: refs)")


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next: int | None = Field(description="pass as before= for the next page; null at the end")


@router.get("/audit", tags=["audit"], response_model=AuditPage)
def audit_log(
    request: Request,
    _principal: Annotated[Principal, Depends(admin)],
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=300)] = None,
    target: Annotated[str | None, Query(max_length=1000)] = None,
    since: Annotated[str | None, Query(max_length=64, description="ISO 8601 time")] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 100,
) -> dict[str, Any]:
    query = audit.Query(
        actor=actor,
        action=action,
        target=target,
        since=_since(since),
        before=before,
        limit=limit,
    )
    entries, cursor = audit.entries(runtime_of(request).engine, query)
    return {"entries": entries, "next": cursor}


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"since {value!r} is not an ISO 8601 time", field="since") from None
    if at.tzinfo is None:
        raise InvalidInput("since needs a time zone (e.g. 2026-01-31T12:00:00Z)", field="since")
    return at


@router.get("/whoami")
def whoami(principal: Annotated[Principal, Depends(current_principal)]) -> dict[str, Any]:
    return {
        "name": principal.name,
        "role": principal.role,
        "envs": principal.envs,
        "via": principal.via,
        "actor": principal.actor,
    }


def create_app(runtime: Runtime) -> FastAPI:
    return make_service("auth", runtime, [router], description="Bearer tokens and roles")
