"""The deploy API's read side: history, tasks, logs, in-progress, stats, images, boxes, lock."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from klink import names
from klink.auth.tokens import Principal
from klink.deploy import history, reads
from klink.deploy.canary_report import canary_of
from klink.deploy.context import Services
from klink.deploy.model import STATUSES
from klink.deploy.services import runtime_services
from klink.deploy.store import DeploymentStore
from klink.deploy.waiting import annotate, waiting_for
from klink.errors import InvalidInput, NotFound
from klink.service import reader, runtime_of
from klink.service.openapi import errors

read_router = APIRouter(tags=["deploy"])


def _store(request: Request) -> DeploymentStore:
    return DeploymentStore(runtime_of(request).engine)


def services_of(request: Request) -> Services:
    runtime = runtime_of(request)
    factory = runtime.extras.get("deploy.services")
    services: Services = factory() if factory else runtime_services(runtime)
    return services


@read_router.get("/{app}/{env}/images", responses=errors(502))
def images(
    app: str, env: str, request: Request, _p: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    names.check_name(app, "app")
    names.check_name(env, "env")
    return {"images": reads.images(services_of(request), app, env)}


@read_router.get("/{app}/{env}/boxes", responses=errors(502))
def boxes(
    app: str, env: str, request: Request, _p: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    names.check_name(app, "app")
    names.check_name(env, "env")
    return reads.boxes(services_of(request), app, env)


@read_router.get("/lock")
def get_lock(request: Request, _p: Annotated[Principal, Depends(reader)]) -> dict[str, Any]:
    lock = _store(request).lock()
    return {"locked": lock is not None, **(lock or {})}


@read_router.get("/deployments")
def list_deployments(
    request: Request,
    _p: Annotated[Principal, Depends(reader)],
    app: str | None = None,
    env: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    user: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
) -> dict[str, Any]:
    if app is not None:
        names.check_name(app, "app")
    if env is not None:
        names.check_name(env, "env")
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
    if since is not None and since.tzinfo is None:
        raise InvalidInput("since needs a time zone (e.g. 2026-01-01T00:00:00Z)", field="since")
    store = _store(request)
    found = store.find(app=app, env=env, status=status, since=since, limit=limit, user=user)
    annotate(store.engine, found)
    return {"deployments": [d.summary() for d in found]}


@read_router.get("/deployments/{deployment_id}")
def get_deployment(
    deployment_id: str, request: Request, _p: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    store = _store(request)
    d = store.get(deployment_id)
    annotate(store.engine, [d], every=True)
    return d.to_json()


@read_router.get("/deployments/{deployment_id}/canary", responses=errors(404))
def get_canary(
    deployment_id: str, request: Request, _p: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    """A canary's groups, settings, overall verdict and every interval's report (the series
    judged included); 404 for a deployment that ran no canary analysis."""
    d = _store(request).get(deployment_id)
    found = canary_of(d)
    if found is None:
        raise NotFound(f"deployment {d.id} has no canary analysis", field="deployment_id")
    return {"id": d.id, "status": d.status, **found}


@read_router.get("/deployments/{deployment_id}/tasks")
def get_tasks(
    deployment_id: str, request: Request, _p: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    store = _store(request)
    d = store.get(deployment_id)
    return {
        "id": d.id,
        "status": d.status,
        "cursor": d.cursor,
        "tasks": store.tasks(d.id),
        "plan": [s.to_json() for s in d.plan],
    }


@read_router.get("/deployments/{deployment_id}/logs")
def get_logs(
    deployment_id: str,
    request: Request,
    _p: Annotated[Principal, Depends(reader)],
    since: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,  # a log id: a 64-bit integer
) -> dict[str, Any]:
    store = _store(request)
    d = store.get(deployment_id)
    logs = store.logs(d.id, since)
    annotate(store.engine, [d])
    return {
        "id": d.id,
        "status": d.status,
        "waitingFor": waiting_for(d),
        "cursor": d.cursor,
        "actions": len(d.plan),
        "logs": logs,
        "next": logs[-1]["id"] if logs else since,
    }


@read_router.get("/in-progress")
def in_progress(request: Request, _p: Annotated[Principal, Depends(reader)]) -> dict[str, Any]:
    store = _store(request)
    found = store.in_progress()
    annotate(store.engine, found)
    return {"deployments": [d.summary() for d in found]}


@read_router.get("/stats")
def stats(request: Request, _p: Annotated[Principal, Depends(reader)]) -> dict[str, Any]:
    return reads.stats(_store(request).stats())


@read_router.get("/running")
def running(
    request: Request, _p: Annotated[Principal, Depends(reader)], app: str | None = None
) -> dict[str, Any]:
    """What runs in each app+env, by history (the newest completed deployment of each)."""
    if app is not None:
        names.check_name(app, "app")
    return {"running": history.running(runtime_of(request).engine, app)}


@read_router.get("/stuck")
def stuck(
    request: Request,
    _p: Annotated[Principal, Depends(reader)],
    seconds: Annotated[float | None, Query(gt=0, le=366 * 86400)] = None,
) -> dict[str, Any]:
    """Active deployments without progress for longer than ``seconds`` (default
    ``KLINK_STUCK_SECONDS``), each with its action and why (``klink.deploy.stuck``)."""
    from klink.deploy.stuck import find_stuck

    runtime = runtime_of(request)
    limit = seconds if seconds is not None else runtime.settings.stuck_seconds
    found = find_stuck(runtime.engine, runtime.clock(), limit)
    return {"seconds": limit, "deployments": [r.to_json() for r in found]}
