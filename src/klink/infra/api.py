"""The infrastructure service's HTTP API (mounted at ``/infra``).

``GET /{app}/{env}/plan?at=REF`` shows the plan (with the commit it was computed from and its
``plan_hash``); ``POST /{app}/{env}/apply`` ``{at?, plan_hash?}`` plans again from live state and
applies it, refusing with 409 when ``plan_hash`` no longer matches; ``GET /{app}/{env}/history``
lists applies; ``GET /drift`` the latest drift checks and ``POST /drift/run`` runs them now.
Reads need ``reader``; apply needs ``admin`` or ``deployer`` on that environment; running drift
checks by hand needs ``admin``. The drift scheduler runs in the service's lifespan when
schedules are on.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, Field

from klink.auth.tokens import Principal
from klink.infra import drift, service, store
from klink.names import check_name
from klink.providers.local import health as local_health
from klink.service import Runtime, admin, make_service, reader, runtime_of
from klink.service.auth import deployer
from klink.service.health import local_cloud
from klink.service.openapi import errors

router = APIRouter(tags=["infra"])


class ApplyBody(BaseModel):
    at: str = Field("HEAD", min_length=1, max_length=200, description="config commit or ref")
    plan_hash: str | None = Field(
        None, pattern="^[0-9a-f]{64}$", description="refuse (409) unless the plan still has it"
    )


@router.get("/{app}/{env}/plan", responses=errors(502))
def get_plan(
    app: str,
    env: str,
    request: Request,
    _p: Annotated[Principal, Depends(reader)],
    at: Annotated[str, Query(min_length=1, max_length=200)] = "HEAD",
) -> dict[str, Any]:
    check_name(app, "app")
    check_name(env, "env")
    return service.plan(runtime_of(request), app, env, at).to_json()


@router.post("/{app}/{env}/apply", responses=errors(409, 502))
def post_apply(
    app: str,
    env: str,
    request: Request,
    principal: Annotated[Principal, Depends(deployer)],
    body: ApplyBody | None = None,
) -> dict[str, Any]:
    check_name(app, "app")
    check_name(env, "env")
    principal.require_deploy(env)
    body = body or ApplyBody.model_validate({})
    return service.apply(
        runtime_of(request), app, env, actor=principal.name, at=body.at, plan_hash=body.plan_hash
    )


@router.get("/{app}/{env}/history")
def get_history(
    app: str,
    env: str,
    request: Request,
    _p: Annotated[Principal, Depends(reader)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    check_name(app, "app")
    check_name(env, "env")
    return {"history": store.history(runtime_of(request).engine, app, env, limit)}


@router.get("/drift")
def get_drift(
    request: Request,
    _p: Annotated[Principal, Depends(reader)],
    env: str | None = None,
) -> dict[str, Any]:
    if env is not None:
        check_name(env, "env")
    return {"reports": store.drift_reports(runtime_of(request).engine, env)}


@router.post("/drift/run", responses=errors(502))
def run_drift(
    request: Request,
    _p: Annotated[Principal, Depends(admin)],
    env: str | None = None,
) -> dict[str, Any]:
    if env is not None:
        check_name(env, "env")
    runtime = runtime_of(request)
    checked = drift.run_due(runtime, force=True, only=env)
    return {"checked": checked, "reports": store.drift_reports(runtime.engine, env)}


def create_app(runtime: Runtime) -> FastAPI:
    scheduler = drift.DriftScheduler(runtime)
    on_start, on_stop = [], []
    if runtime.settings.schedules_enabled:
        on_start.append(scheduler.start)
        on_stop.append(scheduler.stop)
    app = make_service(
        "infra",
        runtime,
        [router],
        on_start=on_start,
        on_stop=on_stop,
        description="Load balancers, security groups and IAM from infrastructure.yaml: "
        "plan, apply, drift",
        checks=[local_cloud(runtime, local_health.healthy)],
    )
    app.state.drift_scheduler = scheduler
    return app
