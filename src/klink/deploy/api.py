"""The deploy service's HTTP API (mounted at ``/deploy``) and its engine's lifecycle.

``POST /{app}/{env}`` creates a deployment (201 ``{id}``; 409 when app+env has one in
progress or Klink is locked); ``/{app}/{env}/{pause,resume,cancel,retry,undo,unlock}`` steer
the one in progress; ``rollback``, ``redeploy`` and ``resize`` act on the last completed one;
``/deployments`` (history, tasks, logs), ``/in-progress`` and ``/stats`` read. Changes need
``deployer`` on the environment (``unlock`` and the global lock need ``admin``). The engine runs
in this service's lifespan when ``KLINK_ENGINE`` is on.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel, Field

from klink import names
from klink.auth.tokens import Principal
from klink.deploy import controls, dryrun, reads
from klink.deploy import plan as planner
from klink.deploy.actions.discover import current_group
from klink.deploy.api_read import read_router, services_of
from klink.deploy.engine import Engine, EngineThreads
from klink.deploy.model import Deployment, GroupState
from klink.deploy.services import runtime_services
from klink.deploy.store import DeploymentStore
from klink.errors import Conflict, InvalidInput, NotFound
from klink.service import Runtime, admin, make_service, runtime_of
from klink.service.auth import deployer

router = APIRouter(tags=["deploy"])


class DeployBody(BaseModel):
    image: str | None = Field(default=None, max_length=128)
    commit: str | None = Field(default=None, max_length=64)
    message: str = Field(min_length=1, max_length=2000)
    dryRun: bool = False


class MessageBody(BaseModel):
    message: str = Field(default="", max_length=2000)
    dryRun: bool = False


class ResizeBody(BaseModel):
    min: int = Field(ge=0, le=1000)
    max: int = Field(ge=0, le=1000)
    desired: int = Field(ge=0, le=1000)


class LockBody(BaseModel):
    message: str = Field(min_length=1, max_length=2000)


def _store(request: Request) -> DeploymentStore:
    return DeploymentStore(runtime_of(request).engine)


def _target(app: str, env: str, principal: Principal) -> None:
    names.check_name(app, "app")
    names.check_name(env, "env")
    principal.require_deploy(env)


def _new(
    app: str,
    env: str,
    principal: Principal,
    image: str | None,
    commit: str | None,
    message: str,
    kind: str,
) -> Deployment:
    if not message.strip():
        raise InvalidInput("a message is required", field="message")
    if commit is not None and (not commit or commit.startswith("-") or "\0" in commit):
        raise InvalidInput(f"commit {commit!r} is not a ref", field="commit")
    return Deployment(
        id=uuid.uuid4().hex[:12],
        app=app,
        env=env,
        image=image,
        commit=commit,
        user=principal.name,
        message=message.strip(),
        kind=kind,
        plan=list(planner.PREPARATION),
    )


def _start(request: Request, response: Response, d: Deployment, dry_run: bool) -> dict[str, Any]:
    if dry_run:
        return dryrun.deployment(d, services_of(request))
    _store(request).create(d, runtime_of(request).clock())
    response.status_code = 201
    return {"id": d.id, "status": d.status, "app": d.app, "env": d.env, "image": d.image}


@router.post("/{app}/{env}")
def create_deployment(
    app: str,
    env: str,
    body: DeployBody,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(deployer)],
) -> dict[str, Any]:
    _target(app, env, principal)
    if not body.image:
        raise InvalidInput("image is required (klink deploy offers the newest)", field="image")
    d = _new(app, env, principal, body.image, body.commit, body.message, "deploy")
    return _start(request, response, d, body.dryRun)


def _last(request: Request, app: str, env: str) -> Deployment:
    last = _store(request).last_completed(app, env)
    if last is None:
        raise Conflict(f"{app}/{env} has no completed deployment", field="app")
    return last


@router.post("/{app}/{env}/rollback")
def rollback(
    app: str,
    env: str,
    body: MessageBody,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(deployer)],
) -> dict[str, Any]:
    _target(app, env, principal)
    previous = GroupState.from_json(_last(request, app, env).previous_state)
    if previous is None or not previous.image_id:
        raise Conflict(f"the last deployment of {app}/{env} had no previous group", field="app")
    message = body.message or f"rollback to {previous.image_id}"
    d = _new(app, env, principal, previous.image_id, previous.config_commit, message, "rollback")
    return _start(request, response, d, body.dryRun)


@router.post("/{app}/{env}/redeploy")
def redeploy(
    app: str,
    env: str,
    body: MessageBody,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(deployer)],
) -> dict[str, Any]:
    _target(app, env, principal)
    last = _last(request, app, env)
    message = body.message or f"redeploy {last.image} with the newest config"
    d = _new(app, env, principal, last.image, None, message, "redeploy")
    return _start(request, response, d, body.dryRun)


def _holder(request: Request, app: str, env: str) -> str:
    holder = _store(request).slot_holder(app, env)
    if holder is None:
        raise NotFound(f"{app}/{env} has no deployment in progress", field="app")
    return holder


def _control(request: Request, app: str, env: str, change: Any) -> dict[str, Any]:
    store = _store(request)
    d = store.control(_holder(request, app, env), change, runtime_of(request).clock())
    return d.summary()


@router.post("/{app}/{env}/pause")
def pause(
    app: str, env: str, request: Request, principal: Annotated[Principal, Depends(deployer)]
) -> dict[str, Any]:
    _target(app, env, principal)
    return _control(
        request, app, env, lambda c, d, leased: controls.pause(d, leased, principal.name)
    )


@router.post("/{app}/{env}/resume")
def resume(
    app: str, env: str, request: Request, principal: Annotated[Principal, Depends(deployer)]
) -> dict[str, Any]:
    _target(app, env, principal)
    return _control(request, app, env, lambda c, d, leased: controls.resume(d, principal.name))


@router.post("/{app}/{env}/cancel")
def cancel(
    app: str, env: str, request: Request, principal: Annotated[Principal, Depends(deployer)]
) -> dict[str, Any]:
    _target(app, env, principal)
    return _control(
        request, app, env, lambda c, d, leased: controls.cancel_request(d, leased, principal.name)
    )


@router.post("/{app}/{env}/retry")
def retry(
    app: str, env: str, request: Request, principal: Annotated[Principal, Depends(deployer)]
) -> dict[str, Any]:
    _target(app, env, principal)
    store = _store(request)
    return _control(
        request, app, env, lambda c, d, leased: controls.retry(store, c, d, principal.name)
    )


@router.post("/{app}/{env}/undo")
def undo(
    app: str,
    env: str,
    request: Request,
    principal: Annotated[Principal, Depends(deployer)],
    body: MessageBody | None = None,
) -> dict[str, Any]:
    _target(app, env, principal)
    store = _store(request)
    dry = body is not None and body.dryRun
    holder = store.slot_holder(app, env)
    if holder is None:
        # Nothing in progress: undo the last deployment if it completed.
        last = store.find(app=app, env=env, limit=1)
        if not last:
            raise NotFound(f"{app}/{env} has no deployment to undo", field="app")
        if dry:
            controls.undo_completed(last[0], principal.name)
            last[0].undo = False
            return dryrun.undo(last[0], services_of(request))
        change = lambda c, d, leased: controls.undo_completed(d, principal.name)  # noqa: E731
        return store.reopen(last[0].id, change, runtime_of(request).clock()).summary()
    if dry:
        d = store.get(holder)
        controls.undo(d, principal.name)  # the same checks as a real undo
        d.undo = False
        return dryrun.undo(d, services_of(request))
    return _control(request, app, env, lambda c, d, leased: controls.undo(d, principal.name))


@router.post("/{app}/{env}/unlock")
def unlock(
    app: str, env: str, request: Request, principal: Annotated[Principal, Depends(admin)]
) -> dict[str, Any]:
    _target(app, env, principal)
    store = _store(request)
    holder = _holder(request, app, env)
    d = store.control(
        holder, lambda c, d, leased: controls.unlock(d, principal.name), runtime_of(request).clock()
    )
    store.unlock_slot(app, env)
    return d.summary()


@router.post("/{app}/{env}/resize")
def resize(
    app: str,
    env: str,
    body: ResizeBody,
    request: Request,
    principal: Annotated[Principal, Depends(deployer)],
) -> dict[str, Any]:
    _target(app, env, principal)
    if not body.min <= body.desired <= body.max:
        raise InvalidInput("sizes must satisfy min <= desired <= max", field="desired")
    store = _store(request)
    if store.slot_holder(app, env) is not None:
        raise Conflict(f"{app}/{env} has a deployment in progress", field="app")
    with_lock_check(store)
    provider = reads.provider(services_of(request), env)
    group = current_group(provider, app, env)
    if group is None:
        raise NotFound(f"{app}/{env} has no group", field="app")
    provider.resize_group(
        group.name, min_size=body.min, max_size=body.max, desired_capacity=body.desired
    )
    return {"group": group.name, "min": body.min, "max": body.max, "desired": body.desired}


def with_lock_check(store: DeploymentStore) -> None:
    lock = store.lock()
    if lock is not None:
        from klink.errors import Locked

        raise Locked(f"Klink is locked by {lock['actor']}: {lock['message']}")


@router.post("/lock")
def set_lock(
    body: LockBody, request: Request, principal: Annotated[Principal, Depends(admin)]
) -> dict[str, Any]:
    _store(request).set_lock(body.message, principal.name, runtime_of(request).clock())
    return {"locked": True, "message": body.message, "actor": principal.name}


@router.delete("/lock")
def clear_lock(request: Request, _p: Annotated[Principal, Depends(admin)]) -> dict[str, Any]:
    return {"locked": False, "was": _store(request).clear_lock()}


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

    def stop_engine() -> None:
        while threads:
            threads.pop().stop()

    return make_service(
        "deploy",
        runtime,
        [router, read_router],
        on_start=[start_engine],
        on_stop=[stop_engine],
        description="Resumable red-black deployments with pause, undo, rollback and history",
    )
