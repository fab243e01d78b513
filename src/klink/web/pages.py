"""Sign-in, sign-out, the overview, an application and one of its environments.

The overview is three reads whatever the size of the platform (applications, environments,
what runs where by history, what is in progress); health needs the provider, so each cell
loads its own (``/apps/{app}/{env}/part/health``, lazily as it scrolls into view) and the
application page loads each environment's groups the same way. Without JavaScript those parts
are links to the environment's page, which shows everything inline.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from klink import names
from klink.auth.client import AuthClient
from klink.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from klink.web import views
from klink.web.reads import Reads, off, offloaded, optional, together
from klink.web.render import page, reads_of, sessions_of, signed_in
from klink.web.session import COOKIE, Session

router = APIRouter(include_in_schema=False)
Visitor = Annotated[Session, Depends(signed_in)]
PARTS = ("health", "groups", "commits")


def _next(value: str | None) -> str:
    """Where to go after signing in: a path of this site only (never ``//host``)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _same_origin(request: Request) -> None:
    """The POSTs come from this site's own forms (an Origin header, when sent, must match)."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin.split("://", 1)[-1] != request.headers.get("host"):
        raise Forbidden("this form must be sent from Klink's own pages", field="origin")


@router.get("/sign-in", response_class=HTMLResponse)
@offloaded
def sign_in_page(request: Request, next: str | None = None) -> Response:
    return page(request, "sign_in.html", title="Sign in", next=_next(next), problem=None)


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    _same_origin(request)
    form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
    token = (form.get("token") or [""])[0].strip()
    target = _next((form.get("next") or [""])[0])
    if not token:
        return page(
            request, "sign_in.html", 400, title="Sign in", next=target, problem="Enter a token."
        )
    runtime = request.app.state.runtime
    try:
        who = await off(AuthClient(runtime.http("auth"), token).whoami)
    except Unauthorized:
        problem = "That token is not valid (unknown, revoked or expired)."
        return page(request, "sign_in.html", 401, title="Sign in", next=target, problem=problem)
    sessions = sessions_of(request)
    cookie = sessions.dump(Session(token=token, name=str(who["name"]), role=str(who["role"])))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(value=cookie, **sessions.cookie_args())
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    _same_origin(request)
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


def overview_context(reads: Reads) -> dict[str, Any]:
    apps, envs, running, moving = together(
        reads.metadata.applications,
        reads.metadata.environments,
        reads.deploy.running,
        reads.deploy.in_progress,
    )
    return {
        "rows": views.grid(apps, envs, running, moving),
        "envs": envs,
        "moving": moving,
        "since": views.digest(views.overview_fingerprint(moving)),
    }


@router.get("/", response_class=HTMLResponse)
@offloaded
def overview(request: Request, session: Visitor) -> Response:
    context = overview_context(reads_of(request, session))
    return page(request, "overview.html", title="Overview", **context)


def _names(app: str, env: str | None = None) -> None:
    """A name that cannot exist is simply not there: a 404, like an unknown one."""
    for value, field in ((app, "app"), (env, "env")):
        if value is not None and not names.is_valid_name(value):
            raise NotFound(f"there is no {field} {value!r}", field=field)


def _groups(found: tuple[Any, str | None], running: dict[str, Any] | None) -> dict[str, Any]:
    """The boxes answer (or why there is none) and its health, for the groups template, with
    the group that serves by history (the boxes API shows the newest group, which during a
    deployment is the new one)."""
    boxes, problem = found
    serving = running["group"] if running else None
    if boxes is None:
        return {"boxes": None, "problem": problem, "serving": serving}
    desired = running["desired"] if running else None
    return {
        "boxes": boxes,
        "problem": None,
        "serving": serving,
        "health": views.health(boxes.get("boxes") or [], desired),
    }


@router.get("/apps/{app}", response_class=HTMLResponse)
@offloaded
def application(request: Request, app: str, session: Visitor) -> Response:
    reads = reads_of(request, session)
    _names(app)
    # ``together`` raises the first failed call's error: the application's 404 comes first.
    record, environments, runs, in_progress, (repos, _), (images, images_problem) = together(
        lambda: reads.metadata.application(app),
        reads.metadata.environments,
        lambda: reads.deploy.running(app),
        reads.deploy.in_progress,
        lambda: optional(reads.config.repos, app),
        lambda: optional(reads.bake.images, app),
    )
    envs = [e["name"] for e in environments]
    running = {r["env"]: r for r in runs}
    moving = {d["env"]: d for d in in_progress if d["app"] == app}
    with_repo = {r["env"] for r in repos or []}
    shown = [e for e in envs if e in with_repo or e in running or e in moving]
    return page(
        request,
        "application.html",
        title=app,
        app=record,
        links=views.links(record.get("metadata") or {}),
        envs=shown,
        running=running,
        moving=moving,
        images=images or [],
        images_problem=images_problem,
    )


@router.get("/apps/{app}/{env}", response_class=HTMLResponse)
@offloaded
def app_env(request: Request, app: str, env: str, session: Visitor) -> Response:
    reads = reads_of(request, session)
    _names(app, env)
    found = together(
        lambda: reads.metadata.application(app),
        lambda: reads.metadata.environment(env),
        lambda: reads.deploy.running(app),
        reads.deploy.in_progress,
        lambda: reads.deploy.deployments(app=app, env=env, limit=10),
        lambda: optional(reads.config.commits, app, env, limit=10),
        lambda: optional(reads.bake.images, app),
        lambda: optional(reads.deploy.boxes, app, env),
    )
    record, _env, runs, in_progress, recent, (commits, commits_problem) = found[:6]
    (images, images_problem), boxes = found[6:]
    running = next(iter(r for r in runs if r["env"] == env), None)
    moving = next(iter(d for d in in_progress if (d["app"], d["env"]) == (app, env)), None)
    return page(
        request,
        "app_env.html",
        title=f"{app} in {env}",
        app=record,
        env=env,
        run=running,
        moving=moving,
        recent=recent,
        groups=_groups(boxes, running),
        commits=commits[0] if commits else [],
        commits_problem=commits_problem,
        images=images or [],
        images_problem=images_problem,
    )


@router.get("/apps/{app}/{env}/part/{part}", response_class=HTMLResponse)
@offloaded
def part(request: Request, app: str, env: str, part: str, session: Visitor) -> Response:
    """A piece of a page loaded on its own (htmx): a cell's health, an env's groups, commits."""
    if part not in PARTS:
        raise NotFound(f"there is no part {part!r}; parts: {', '.join(PARTS)}", field="part")
    reads = reads_of(request, session)
    for value, field in ((app, "app"), (env, "env")):
        if not names.is_valid_name(value):
            raise InvalidInput(f"{field} {value!r} is not a valid name", field=field)
    context: dict[str, Any] = {"app": app, "env": env}
    if part in ("health", "groups"):
        runs, boxes = together(
            lambda: reads.deploy.running(app), lambda: optional(reads.deploy.boxes, app, env)
        )
        running = next(iter(r for r in runs if r["env"] == env), None)
        context["groups"] = _groups(boxes, running)
        # The overview's cell id: the same element across the board's live updates.
        context["deployment"] = running["deployment"] if running else None
    else:
        found, problem = optional(reads.config.commits, app, env, limit=5)
        context.update(commits=found[0] if found else [], commits_problem=problem)
    return page(request, f"part_{part}.html", **context)
