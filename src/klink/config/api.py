"""The configuration service's HTTP API (mounted at ``/config``).

Read-only REST over the git repositories (changes only through git itself): list repositories,
page through commits, read a file at a ref, diff two refs; ``POST /repos/{app}/{env}`` creates a
repository (idempotent), ``POST /validate`` checks a candidate file, and ``/git/…`` is git's
smart HTTP (see ``gitserver``). Environment records (provider, ``defaults`` templates) come
from the metadata service through its HTTP client.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic import BaseModel, Field

from klink.auth.tokens import Principal
from klink.config import files, gitserver
from klink.config.params import (
    PROVIDERS,
    default_application_properties,
    default_deployment_params,
)
from klink.config.repos import ConfigRepos, render_template
from klink.errors import InvalidInput, NotFound
from klink.metadata.client import MetadataClient
from klink.names import check_name
from klink.service import HealthCheck, Runtime, admin, make_service, reader, runtime_of
from klink.service.openapi import errors

router = APIRouter(tags=["config"])
_REPOS_KEY = "config.repos"
_CREATE_LIMITER_KEY = "config.create_limiter"


def repos_of(runtime: Runtime) -> ConfigRepos:
    repos = runtime.extras.get(_REPOS_KEY)
    if repos is None:
        repos = runtime.extras[_REPOS_KEY] = ConfigRepos(runtime.settings.home / "config")
    assert isinstance(repos, ConfigRepos)
    return repos


def _repos(request: Request) -> ConfigRepos:
    return repos_of(runtime_of(request))


def _describe(request: Request, app: str, env: str) -> dict[str, Any]:
    base = runtime_of(request).settings.service_url("config")
    return {
        "app": app,
        "env": env,
        "name": f"{app}-{env}",
        "cloneUrl": f"{base}/git/{app}-{env}.git",
    }


def initial_files(app: str, env: str, environment: dict[str, Any]) -> dict[str, bytes]:
    """The first commit's files: the environment's ``defaults`` templates, else minimal ones."""
    provider = str(environment.get("provider", "aws"))
    templates = environment.get("defaults") or {}
    content: dict[str, Any] = {
        files.APPLICATION_PROPERTIES: default_application_properties(),
        files.DEPLOYMENT_PARAMS: default_deployment_params(provider),
        files.LAUNCH_DATA: [],
    }
    out: dict[str, bytes] = {}
    for name, default in content.items():
        template = templates.get(name, default)
        if isinstance(template, str):
            raw = render_template(template, app, env).encode()
        else:
            raw = (json.dumps(render_template(template, app, env), indent=2) + "\n").encode()
        problems = files.check_file(name, raw, provider)[1]
        if problems:
            raise InvalidInput(
                f"the defaults template of environment {env!r} is not valid: "
                + "; ".join(files.describe(name, p) for p in problems),
                field=f"defaults.{name}",
            )
        out[name] = raw
    return out


@router.get("/repos")
def list_repos(request: Request, _p: Annotated[Principal, Depends(reader)]) -> dict[str, Any]:
    return {"repos": [_describe(request, a, e) for a, e in _repos(request).all()]}


@router.get("/repos/{app}")
def list_app_repos(
    app: str, request: Request, _p: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    check_name(app, "app")
    return {"repos": [_describe(request, a, e) for a, e in _repos(request).all(app)]}


@router.post(
    "/repos/{app}/{env}",
    responses={201: {"description": "The repository was created"}, **errors(502)},
)
async def create_repo(
    app: str,
    env: str,
    request: Request,
    response: Response,
    _p: Annotated[Principal, Depends(admin)],
) -> dict[str, Any]:
    """Create the repository (201) or find it there (200): idempotent, one creator however
    many ask at once."""
    check_name(app, "app")
    check_name(env, "env")
    runtime = runtime_of(request)

    def work() -> bool:
        metadata = MetadataClient(runtime.http("metadata"))
        metadata.application(app)
        environment = metadata.environment(env).get("metadata", {})
        provider = str(environment.get("provider", "aws"))
        if provider not in PROVIDERS:
            raise InvalidInput(
                f"environment {env!r} has unknown provider {provider!r}", field="env"
            )
        return _repos(request).create(
            app, env, initial_files(app, env, environment), provider=provider
        )

    # Not in the shared thread pool: this work calls the metadata service, possibly in this
    # very process, whose routes need that pool; many creators holding it all would starve it.
    limiter = runtime.extras.get(_CREATE_LIMITER_KEY)
    if limiter is None:
        limiter = runtime.extras[_CREATE_LIMITER_KEY] = anyio.CapacityLimiter(4)
    created = await anyio.to_thread.run_sync(work, limiter=limiter)
    response.status_code = 201 if created else 200
    return {**_describe(request, app, env), "created": created}


@router.get("/repos/{app}/{env}")
def get_repo(
    app: str, env: str, request: Request, _p: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    repos = _repos(request)
    repos.existing(app, env)
    return {**_describe(request, app, env), "head": repos.resolve(app, env, "HEAD")}


@router.get("/repos/{app}/{env}/commits")
def commits(
    app: str,
    env: str,
    request: Request,
    _p: Annotated[Principal, Depends(reader)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    before: Annotated[str | None, Query(max_length=256)] = None,
) -> dict[str, Any]:
    found, cursor = _repos(request).log(app, env, limit=limit, before=before)
    return {"commits": [c.to_json() for c in found], "next": cursor}


@router.get("/repos/{app}/{env}/resolve")
def resolve(
    app: str,
    env: str,
    request: Request,
    _p: Annotated[Principal, Depends(reader)],
    at: Annotated[str, Query(max_length=256)] = "HEAD",
) -> dict[str, Any]:
    return {"hash": _repos(request).resolve(app, env, at)}


@router.get("/repos/{app}/{env}/files/{file}")
def read_file(
    app: str,
    env: str,
    file: str,
    request: Request,
    _p: Annotated[Principal, Depends(reader)],
    at: Annotated[str, Query(max_length=256)] = "HEAD",
) -> dict[str, Any]:
    files.spec_of(file)
    commit, raw = _repos(request).read(app, env, at, file)
    if raw is None:
        raise NotFound(f"{file} does not exist at {commit}", field="file")
    return {"hash": commit, "file": file, "data": files.decode(file, raw)}


@router.get("/repos/{app}/{env}/diff")
def diff(
    app: str,
    env: str,
    request: Request,
    _p: Annotated[Principal, Depends(reader)],
    from_: Annotated[str, Query(alias="from", max_length=256)],
    to: Annotated[str, Query(max_length=256)] = "HEAD",
) -> dict[str, Any]:
    repos = _repos(request)
    old = repos.resolve(app, env, from_, "from")
    new = repos.resolve(app, env, to, "to")
    changes = []
    for change in repos.diff(app, env, old, new):
        known = change.file in files.FILES
        changes.append(
            {
                "file": change.file,
                "status": change.status,
                "diff": change.diff,
                "before": _parsed(change.file, change.before) if known else None,
                "after": _parsed(change.file, change.after) if known else None,
            }
        )
    return {"from": old, "to": new, "files": changes}


def _parsed(name: str, raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return files.spec_of(name).parse(raw)
    except ValueError:
        return None


class ValidateBody(BaseModel):
    file: str = Field(description="one of the config file names")
    content: str | None = Field(default=None, description="the file's text")
    data: Any = Field(default=None, description="or the parsed JSON value")
    provider: str = Field(default="aws", description="aws or local")


@router.post("/validate")
def validate(body: ValidateBody, _p: Annotated[Principal, Depends(reader)]) -> dict[str, Any]:
    files.spec_of(body.file)
    if body.provider not in PROVIDERS:
        raise InvalidInput(f"provider must be one of {', '.join(PROVIDERS)}", field="provider")
    if body.content is not None:
        raw = body.content.encode()
    elif "data" in body.model_fields_set:
        raw = json.dumps(body.data).encode()
    else:
        raise InvalidInput("give the candidate as content (text) or data (JSON)", field="content")
    _data, problems = files.check_file(body.file, raw, body.provider)
    return {
        "file": body.file,
        "valid": not problems,
        "problems": [{"field": p.field, "message": p.message} for p in problems],
    }


@router.api_route("/git/{repo}/{path:path}", methods=["GET", "POST"], include_in_schema=False)
async def git(repo: str, path: str, request: Request) -> Response:
    stem = repo.removesuffix(".git")
    app, _, env = stem.partition("-")
    if not repo.endswith(".git") or not _ or not app or not env:
        raise NotFound(f"no config repository {repo!r}", field="repo")
    return await gitserver.serve(request, _repos(request), app, env, path)


def create_app(runtime: Runtime) -> FastAPI:
    repos = repos_of(runtime)
    return make_service(
        "config",
        runtime,
        [router],
        checks=[HealthCheck("git", repos.check_writable)],
        on_stop=[repos.close],
        description="Git-backed configuration per application and environment",
    )
