"""The deploy service's HTTP API (mounted at ``/deploy``) and its engine's lifecycle.

``POST /{app}/{env}`` creates a deployment (201 ``{id}``; 409 when app+env has one in
progress or Klink is locked); ``/{app}/{env}/{pause,resume,cancel,retry,undo,unlock}`` steer
the one in progress; ``rollback``, ``redeploy`` and ``resize`` act on the last completed one;
``/{app}/{env}/promote`` deploys what runs in another environment; ``/deployments/{id}/
{approve,reject,override}`` are people's decisions on the release rules (``release.py``);
``/deployments`` (history, tasks, logs), ``/in-progress`` and ``/stats`` read. Changes need
``deployer`` on the environment (``unlock`` and the global lock need ``admin``). The engine runs
in this service's lifespan when ``KLINK_ENGINE`` is on.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel, Field

from klink import names
from klink.auth.tokens import Principal
from klink.deploy.api_read import read_router, services_of
from klink.deploy.commands import Actor, Commands
from klink.deploy.context import Services
from klink.deploy.engine import Engine, EngineThreads
from klink.deploy.expiry import ExpiryScheduler
from klink.deploy.metrics import watch
from klink.deploy.services import runtime_services
from klink.deploy.store import DeploymentStore
from klink.deploy.stuck import StuckScheduler
from klink.providers.local import health as local_health
from klink.service import Runtime, admin, make_service, reader, runtime_of
from klink.service.auth import deployer
from klink.service.health import local_cloud
from klink.service.openapi import errors

router = APIRouter(tags=["deploy"])
# A new deployment: 201 (a dry run answers 200 with the plan); 409 when app+env is busy or
# Klink is locked; 502 when the cloud refuses a read of a dry run.
CREATED = {201: {"description": "The deployment was created"}, **errors(409, 502)}


class DeployBody(BaseModel):
    image: str | None = Field(default=None, max_length=128)
    commit: str | None = Field(default=None, max_length=64)
    message: str = Field(min_length=1, max_length=2000)
    dryRun: bool = False
    windowWait: bool = True  # false: refused (409) outside the window or inside a freeze


class PromoteBody(BaseModel):
    source: str | None = Field(default=None, alias="from", max_length=32)
    commit: str | None = Field(default=None, max_length=64)
    message: str = Field(min_length=1, max_length=2000)
    dryRun: bool = False
    windowWait: bool = True


class DecisionBody(BaseModel):
    message: str = Field(min_length=1, max_length=2000)


class MessageBody(BaseModel):
    message: str = Field(default="", max_length=2000)
    dryRun: bool = False


class ResizeBody(BaseModel):
    min: int = Field(ge=0, le=1000)
    max: int = Field(ge=0, le=1000)
    desired: int = Field(ge=0, le=1000)


class LockBody(BaseModel):
    message: str = Field(min_length=1, max_length=2000)


def commands_of(request: Request) -> Commands:
    runtime = runtime_of(request)
    return Commands(
        store=DeploymentStore(runtime.engine),
        services=lambda: services_of(request),
        clock=runtime.clock,
        wake=runtime.extras.get("deploy.wake"),
    )


def actor_of(principal: Principal) -> Actor:
    return Actor(principal.name, getattr(principal, "via", None))


def _target(app: str, env: str, principal: Principal) -> None:
    names.check_name(app, "app")
    names.check_name(env, "env")
    principal.require_deploy(env)


Reader = Annotated[Principal, Depends(reader)]
Deployer = Annotated[Principal, Depends(deployer)]
Admin = Annotated[Principal, Depends(admin)]


@router.post("/{app}/{env}", responses=CREATED)
def create_deployment(
    app: str, env: str, body: DeployBody, request: Request, response: Response, principal: Deployer
) -> dict[str, Any]:
    _target(app, env, principal)
    result = commands_of(request).deploy(
        actor_of(principal),
        app,
        env,
        body.image,
        body.message,
        commit=body.commit,
        dry_run=body.dryRun,
        window_wait=body.windowWait,
    )
    if not body.dryRun:
        response.status_code = 201
    return result


@router.post("/{app}/{env}/promote", responses=CREATED)
def promote(
    app: str, env: str, body: PromoteBody, request: Request, response: Response, principal: Deployer
) -> dict[str, Any]:
    """Deploy to ``env`` the image running in ``from`` (default: ``env``'s promotesFrom)."""
    _target(app, env, principal)
    result = commands_of(request).promote(
        actor_of(principal),
        app,
        body.source,
        env,
        body.message,
        commit=body.commit,
        dry_run=body.dryRun,
        window_wait=body.windowWait,
    )
    if not body.dryRun:
        response.status_code = 201
    return result


@router.post("/deployments/{deployment_id}/approve", responses=errors(409))
def approve(
    deployment_id: str, body: DecisionBody, request: Request, principal: Reader
) -> dict[str, Any]:
    """Who may approve is the environment's ``approvals.roles``; checked by the command."""
    return commands_of(request).approve(actor_of(principal), principal, deployment_id, body.message)


@router.post("/deployments/{deployment_id}/reject", responses=errors(409))
def reject(
    deployment_id: str, body: DecisionBody, request: Request, principal: Reader
) -> dict[str, Any]:
    return commands_of(request).reject(actor_of(principal), principal, deployment_id, body.message)


@router.post("/deployments/{deployment_id}/override", responses=errors(409))
def override(
    deployment_id: str, body: DecisionBody, request: Request, principal: Admin
) -> dict[str, Any]:
    return commands_of(request).override(
        actor_of(principal), principal, deployment_id, body.message
    )


@router.post("/{app}/{env}/rollback", responses=CREATED)
def rollback(
    app: str, env: str, body: MessageBody, request: Request, response: Response, principal: Deployer
) -> dict[str, Any]:
    _target(app, env, principal)
    result = commands_of(request).rollback(
        actor_of(principal), app, env, body.message, dry_run=body.dryRun
    )
    if not body.dryRun:
        response.status_code = 201
    return result


@router.post("/{app}/{env}/redeploy", responses=CREATED)
def redeploy(
    app: str, env: str, body: MessageBody, request: Request, response: Response, principal: Deployer
) -> dict[str, Any]:
    _target(app, env, principal)
    result = commands_of(request).redeploy(
        actor_of(principal), app, env, body.message, dry_run=body.dryRun
    )
    if not body.dryRun:
        response.status_code = 201
    return result


@router.post("/{app}/{env}/pause", responses=errors(409))
def pause(
    app: str, env: str, request: Request, principal: Deployer, body: MessageBody | None = None
) -> dict[str, Any]:
    _target(app, env, principal)
    message = body.message if body is not None else ""
    return commands_of(request).pause(actor_of(principal), app, env, message)


@router.post("/{app}/{env}/resume", responses=errors(409))
def resume(app: str, env: str, request: Request, principal: Deployer) -> dict[str, Any]:
    _target(app, env, principal)
    return commands_of(request).resume(actor_of(principal), app, env)


@router.post("/{app}/{env}/cancel", responses=errors(409))
def cancel(app: str, env: str, request: Request, principal: Deployer) -> dict[str, Any]:
    _target(app, env, principal)
    return commands_of(request).cancel(actor_of(principal), app, env)


@router.post("/{app}/{env}/retry", responses=errors(409))
def retry(app: str, env: str, request: Request, principal: Deployer) -> dict[str, Any]:
    _target(app, env, principal)
    return commands_of(request).retry(actor_of(principal), app, env)


@router.post("/{app}/{env}/undo", responses=errors(409, 502))
def undo(
    app: str, env: str, request: Request, principal: Deployer, body: MessageBody | None = None
) -> dict[str, Any]:
    _target(app, env, principal)
    message, dry = (body.message, body.dryRun) if body is not None else ("", False)
    return commands_of(request).undo(actor_of(principal), app, env, message, dry_run=dry)


@router.post("/{app}/{env}/unlock", responses=errors(409))
def unlock(app: str, env: str, request: Request, principal: Admin) -> dict[str, Any]:
    _target(app, env, principal)
    return commands_of(request).unlock(actor_of(principal), app, env)


@router.post("/{app}/{env}/resize", responses=CREATED)
def resize(
    app: str, env: str, body: ResizeBody, request: Request, response: Response, principal: Deployer
) -> dict[str, Any]:
    _target(app, env, principal)
    result = commands_of(request).resize(
        actor_of(principal), app, env, min_size=body.min, max_size=body.max, desired=body.desired
    )
    response.status_code = 201
    return {**result, "min": body.min, "max": body.max, "desired": body.desired}


@router.post("/lock")
def set_lock(body: LockBody, request: Request, principal: Admin) -> dict[str, Any]:
    return commands_of(request).lock(actor_of(principal), body.message)


@router.delete("/lock")
def clear_lock(request: Request, principal: Admin) -> dict[str, Any]:
    return commands_of(request).unlock_all(actor_of(principal))


def create_app(runtime: Runtime) -> FastAPI:
    threads: list[EngineThreads] = []

    def start_engine() -> None:
        settings = runtime.settings
        if not settings.engine_enabled:
            return
        factory = runtime.extras.get("deploy.services") or (lambda: runtime_services(runtime))
        runner = EngineThreads(
            lambda: Engine(
                DeploymentStore(runtime.engine), factory(), lease_seconds=settings.lease_seconds
            ),
            settings.engine_workers,
        )
        runner.start()
        threads.append(runner)
        runtime.extras["deploy.wake"] = runner.wake

    def stop_engine() -> None:
        runtime.extras.pop("deploy.wake", None)
        while threads:
            threads.pop().stop()

    def services() -> Services:
        factory = runtime.extras.get("deploy.services")
        found: Services = factory() if factory else runtime_services(runtime)
        return found

    expiry = ExpiryScheduler(services, DeploymentStore(runtime.engine))
    stuck = StuckScheduler(services, runtime.engine, runtime.settings.stuck_seconds)
    on_start, on_stop = [start_engine], [stop_engine]
    if runtime.settings.schedules_enabled:
        on_start += [expiry.start, stuck.start]
        on_stop += [expiry.stop, stuck.stop]

    app = make_service(
        "deploy",
        runtime,
        [router, read_router],
        on_start=on_start,
        on_stop=on_stop,
        description="Resumable red-black deployments with pause, undo, rollback and history",
        checks=[local_cloud(runtime, local_health.healthy)],
    )
    watch(app.state.metrics_registry, runtime)
    return app
