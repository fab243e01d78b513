"""The bake service's HTTP API (mounted at ``/bake``).

- ``GET /targets``: the known targets (``local``, ``aws:REGION``) and their environments.
- ``POST /images/{app}/{version}`` ``{"target"?, "embargo"?: [env…], "dry_run"?}``: bake a
  service image. The answer streams the bake's output live (``application/x-ndjson``, see
  ``klink.build.jobs``), ending with ``{"result": {"image", "target", …}}``; an identical
  running bake is joined. ``dry_run`` answers at once with the Packer template (AWS) or the
  plan (local).
- ``POST /base`` ``{"target"?}``: bake a base image (streamed the same way).
- ``GET /images/{app}`` (``?target=``), ``DELETE /images/{app}/{image}`` (409 while in use),
  ``POST /clean/{app}``: keep the newest ``KLINK_IMAGES_KEEP`` plus those in use.

Schedules (unless ``KLINK_SCHEDULES=0``): base bakes on ``KLINK_BAKE_BASE_SCHEDULE`` (cron,
UTC), cleanup of every app's images hourly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from klink.auth.tokens import Principal
from klink.bake.inventory import Inventory
from klink.bake.schedule import CLEANUP_SCHEDULE, Schedule, check_cron
from klink.bake.service import BakeService
from klink.build.store import remove_stale
from klink.service import Runtime, make_service, reader
from klink.service.auth import deployer
from klink.service.openapi import errors

router = APIRouter(tags=["bake"])
NDJSON = "application/x-ndjson"
_STREAMED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The bake's output, one JSON object a line, ending with its result "
        "(a dry run answers one JSON object)",
        "content": {NDJSON: {"schema": {"type": "string"}}, "application/json": {}},
    },
    **errors(409, 502),
}


def service_of(request: Request) -> BakeService:
    service: BakeService = request.app.state.bake
    return service


def inventory_of(request: Request) -> Inventory:
    inventory: Inventory = request.app.state.inventory
    return inventory


class BakeBody(BaseModel):
    target: str | None = None
    embargo: list[str] = Field(default_factory=list)
    dry_run: bool = False


class BaseBody(BaseModel):
    target: str | None = None


@router.get("/targets", responses=errors(502))
def list_targets(request: Request, _p: Annotated[Principal, Depends(reader)]) -> dict[str, Any]:
    targets = service_of(request).targets()
    return {"targets": [{"name": t.name, "environments": list(t.envs)} for t in targets.values()]}


@router.post("/images/{app}/{version}", response_model=None, responses=_STREAMED)
def bake(
    app: str,
    version: str,
    request: Request,
    _p: Annotated[Principal, Depends(deployer)],
    body: BakeBody | None = None,
) -> StreamingResponse | JSONResponse:
    body = body or BakeBody()
    service = service_of(request)
    if body.dry_run:
        return JSONResponse(service.dry_run(app, version, body.target, body.embargo))
    job, joined = service.start_bake(app, version, body.target, body.embargo)
    return StreamingResponse(
        job.ndjson(), media_type=NDJSON, headers={"X-Klink-Joined": "1" if joined else "0"}
    )


@router.post("/base", response_class=StreamingResponse, responses=_STREAMED)
def bake_base(
    request: Request,
    _p: Annotated[Principal, Depends(deployer)],
    body: BaseBody | None = None,
) -> StreamingResponse:
    job, joined = service_of(request).start_base((body or BaseBody()).target)
    return StreamingResponse(
        job.ndjson(), media_type=NDJSON, headers={"X-Klink-Joined": "1" if joined else "0"}
    )


@router.get("/images/{app}", responses=errors(502))
def list_images(
    app: str,
    request: Request,
    _p: Annotated[Principal, Depends(reader)],
    target: str | None = None,
) -> dict[str, Any]:
    return {"images": inventory_of(request).images(app, target)}


@router.delete("/images/{app}/{image}", status_code=204, responses=errors(409, 502))
def delete_image(
    app: str,
    image: str,
    request: Request,
    _p: Annotated[Principal, Depends(deployer)],
    target: str | None = None,
) -> None:
    inventory_of(request).delete_image(app, image, target)


@router.post("/clean/{app}", responses=errors(502))
def clean(
    app: str, request: Request, _p: Annotated[Principal, Depends(deployer)]
) -> dict[str, Any]:
    return inventory_of(request).clean(app)


def create_app(runtime: Runtime) -> FastAPI:
    settings = runtime.settings
    check_cron(settings.bake_base_schedule, "KLINK_BAKE_BASE_SCHEDULE")
    service = BakeService(runtime)
    inventory = Inventory(service)
    schedule = Schedule(clock=runtime.clock)

    def remove_leftovers() -> None:
        # Staging trees of bakes that a crash interrupted (older than any bake can run).
        limit, now = settings.bake_timeout_seconds, time.time()
        remove_stale(settings.home / "local" / "images", ".stage-", limit, now)
        remove_stale(service.work_root, "", limit, now)

    starts: list[Callable[[], None]] = [remove_leftovers]
    stops: list[Callable[[], None]] = [service.close]
    if settings.schedules_enabled:
        schedule.add("base bake", settings.bake_base_schedule, service.bake_all_bases)
        schedule.add("image cleanup", CLEANUP_SCHEDULE, inventory.clean_all)
        starts.append(schedule.start)
        stops.append(schedule.stop)
    app = make_service(
        "bake",
        runtime,
        [router],
        on_start=starts,
        on_stop=stops,
        description="Images: base and service bakes, natively (local) or with Packer (AWS).",
    )
    app.state.bake = service
    app.state.inventory = inventory
    app.state.schedule = schedule
    return app
