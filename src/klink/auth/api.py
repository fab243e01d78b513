"""The auth service (``/auth``): create, list and delete tokens (admin only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, Field

from klink.auth import tokens
from klink.auth.tokens import Principal
from klink.names import check_name
from klink.service import Runtime, admin, current_principal, make_service, runtime_of

TOKEN_NAME = r"^[a-z][a-z0-9._@-]{0,63}$"  # noqa: S105 - a name rule, not a secret


class TokenRequest(BaseModel):
    name: str = Field(pattern=TOKEN_NAME)
    role: str = Field(pattern="^(reader|deployer|admin)$")
    envs: list[str] | None = None


router = APIRouter(tags=["tokens"])


@router.post("/tokens", status_code=201)
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
    name: str, request: Request, _principal: Annotated[Principal, Depends(admin)]
) -> None:
    tokens.delete_token(runtime_of(request).engine, name)


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
