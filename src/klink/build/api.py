"""The build service's HTTP API (mounted at ``/build``).

- ``POST /builds/{app}`` ``{"ref"?}``: build; the answer streams the build's output live as
  ``application/x-ndjson`` (see ``jobs.py``), ending with ``{"result": {"version", …}}``.
- ``PUT /artifacts/{app}/{version}``: publish from any CI; the body is the file, streamed to
  disk; ``X-Checksum-Sha256`` (or ``?sha256=``) is required and verified; 409 if the version
  exists; nothing is left behind when anything fails.
- ``GET /artifacts/{app}`` (newest first), ``GET /artifacts/{app}/{version}``,
  ``GET /artifacts/{app}/{version}/file`` (with ``X-Checksum-Sha256``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from klink.auth.tokens import Principal
from klink.build import builder
from klink.build.jobs import Job, JobRegistry
from klink.build.store import FolderArtifactStore, check_sha256, remove_stale
from klink.build.versions import next_build_number
from klink.errors import InvalidInput
from klink.metadata.client import MetadataClient
from klink.names import check_name, check_version
from klink.service import Runtime, make_service, reader, runtime_of
from klink.service.auth import deployer
from klink.service.openapi import errors

router = APIRouter(tags=["build"])
NDJSON = "application/x-ndjson"
_STREAMED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The build's output, one JSON object a line, ending with its result",
        "content": {NDJSON: {"schema": {"type": "string"}}},
    }
}


@dataclass
class BuildState:
    store: FolderArtifactStore
    jobs: JobRegistry


def state_of(request: Request) -> BuildState:
    state: BuildState = request.app.state.build
    return state


class BuildBody(BaseModel):
    ref: str | None = None


def _app_metadata(runtime: Runtime, app: str) -> dict[str, Any]:
    record = MetadataClient(runtime.http("metadata")).application(check_name(app, "app"))
    metadata: dict[str, Any] = record.get("metadata") or {}
    return metadata


@router.post("/builds/{app}", response_class=StreamingResponse, responses=_STREAMED)
def start_build(
    app: str,
    request: Request,
    _p: Annotated[Principal, Depends(deployer)],
    body: BuildBody | None = None,
) -> StreamingResponse:
    runtime = runtime_of(request)
    state = state_of(request)
    build_request = builder.BuildRequest.from_metadata(
        app, _app_metadata(runtime, app), (body or BuildBody()).ref
    )

    def work(job: Job) -> dict[str, Any]:
        number = next_build_number(runtime.engine, app)
        artifact, commit = builder.build(
            build_request,
            store=state.store,
            number=number,
            timeout=runtime.settings.build_timeout_seconds,
            work_root=runtime.settings.home / "build" / "work",
            log=job.log,
            clock=runtime.clock,
        )
        return {**artifact.to_json(), "commit": commit, "build_number": number}

    job, _joined = state.jobs.start(("build", app, object()), work)
    return StreamingResponse(job.ndjson(), media_type=NDJSON)


@router.put("/artifacts/{app}/{version}", status_code=201, responses=errors(409))
async def put_artifact(
    app: str,
    version: str,
    request: Request,
    _p: Annotated[Principal, Depends(deployer)],
    sha256: str | None = None,
) -> dict[str, Any]:
    runtime = runtime_of(request)
    state = state_of(request)
    check_version(version)
    checksum = request.headers.get("x-checksum-sha256") or sha256
    if not checksum:
        raise InvalidInput(
            "a checksum is required: X-Checksum-Sha256 header or ?sha256=", field="sha256"
        )
    checksum = check_sha256(checksum)
    await anyio.to_thread.run_sync(_app_metadata, runtime, app)
    if state.store.exists(app, version):
        from klink.errors import Conflict

        raise Conflict(f"{app} version {version} exists; versions are never overwritten")
    stream = request.stream().__aiter__()

    async def next_chunk() -> bytes:
        return await stream.__anext__()

    def chunks() -> Iterator[bytes]:
        while True:
            try:
                chunk: bytes = anyio.from_thread.run(next_chunk)
            except StopAsyncIteration:
                return
            if chunk:
                yield chunk

    def store() -> dict[str, Any]:
        artifact = state.store.put(app, version, chunks(), sha256=checksum, at=runtime.clock())
        return artifact.to_json()

    result: dict[str, Any] = await anyio.to_thread.run_sync(store)
    return result


@router.get("/artifacts/{app}")
def list_artifacts(
    app: str, request: Request, _p: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    return {"artifacts": [a.to_json() for a in state_of(request).store.list(app)]}


@router.get("/artifacts/{app}/{version}")
def get_artifact(
    app: str, version: str, request: Request, _p: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    return state_of(request).store.get(app, check_version(version)).to_json()


@router.get(
    "/artifacts/{app}/{version}/file",
    response_class=StreamingResponse,
    responses={200: {"description": "The file", "content": {"application/gzip": {}}}},
)
def download_artifact(
    app: str, version: str, request: Request, _p: Annotated[Principal, Depends(reader)]
) -> StreamingResponse:
    store = state_of(request).store
    artifact = store.get(app, check_version(version))
    headers = {
        "X-Checksum-Sha256": artifact.sha256,
        # The file's real size: if it changed behind the store's back, the client's checksum
        # check is what tells (a wrong length would break the response instead).
        "Content-Length": str(store.file_size(app, version)),
        "Content-Disposition": f'attachment; filename="{artifact.filename}"',
    }
    return StreamingResponse(
        store.iter_file(app, version), media_type="application/gzip", headers=headers
    )


STALE_UPLOAD_SECONDS = 24 * 3600.0


def create_app(runtime: Runtime) -> FastAPI:
    home = runtime.settings.home

    def remove_leftovers() -> None:
        now = time.time()
        remove_stale(home / "artifacts" / ".staging", "", STALE_UPLOAD_SECONDS, now)
        remove_stale(home / "build" / "work", "build-", runtime.settings.build_timeout_seconds, now)

    app = make_service(
        "build",
        runtime,
        [router],
        on_start=[remove_leftovers],
        description="Versioned artifacts: builds from source and uploads from any CI.",
    )
    app.state.build = BuildState(
        store=FolderArtifactStore(runtime.settings.home / "artifacts"), jobs=JobRegistry()
    )
    return app
