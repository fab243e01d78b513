"""Images, infrastructure (plans and drift) and the audit log.

``/images`` lists the applications; for one (``?app=``) every image with its tags and embargo
and the image that runs in each of its environments. ``/infra`` shows the latest drift check
of every app+env and, for one (``?app=&env=``), its plan against the live cloud and its
applies. ``/audit`` shows the
auth service's audit log when ``GET /auth/audit`` answers; otherwise it says why not (not
there yet, or it needs an admin token).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from klink.errors import Forbidden, KlinkError, NotFound, Unauthorized
from klink.web.reads import offloaded, optional, together
from klink.web.render import page, reads_of, signed_in
from klink.web.session import Session
from klink.web.views import filter_name

router = APIRouter(include_in_schema=False)
Visitor = Annotated[Session, Depends(signed_in)]


@router.get("/images", response_class=HTMLResponse)
@offloaded
def images(request: Request, session: Visitor, app: str | None = None) -> Response:
    reads = reads_of(request, session)
    chosen = filter_name(app, "app")
    apps = [a["name"] for a in reads.metadata.applications()]
    found = in_use = None
    if chosen:
        if chosen not in apps:
            raise NotFound(f"there is no application {chosen!r}", field="app")
        found, in_use = together(
            lambda: reads.bake.images(chosen), lambda: reads.deploy.running(chosen)
        )
    return page(
        request, "images.html", title="Images", apps=apps, app=chosen, images=found, in_use=in_use
    )


@router.get("/infra", response_class=HTMLResponse)
@offloaded
def infra(
    request: Request, session: Visitor, app: str | None = None, env: str | None = None
) -> Response:
    reads = reads_of(request, session)
    chosen_app, chosen_env = filter_name(app, "app"), filter_name(env, "env")
    reports = reads.infra.drift(chosen_env)
    plan = applies = problem = None
    if chosen_app and chosen_env:
        reads.metadata.application(chosen_app)
        reads.metadata.environment(chosen_env)
        plan, problem = optional(reads.infra.plan, chosen_app, chosen_env)
        applies, _ = optional(reads.infra.history, chosen_app, chosen_env, 20)
    return page(
        request,
        "infra.html",
        title="Infrastructure",
        reports=reports,
        app=chosen_app,
        env=chosen_env,
        plan=plan,
        applies=applies or [],
        problem=problem,
    )


@router.get("/audit", response_class=HTMLResponse)
@offloaded
def audit(
    request: Request,
    session: Visitor,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    target: Annotated[str | None, Query(max_length=200)] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    reads = reads_of(request, session)
    filters = {"actor": actor, "action": action, "target": target}
    answer = None
    unavailable = None
    try:
        answer = reads.auth.audit(**filters, before=before)
    except Unauthorized:
        raise
    except Forbidden:
        unavailable = "The audit log needs an admin token; you are signed in with a " + (
            f"{session.role} token."
        )
    except NotFound:
        unavailable = "The audit log is not available on this server (GET /auth/audit)."
    except KlinkError as exc:
        if exc.status == 400:
            raise
        unavailable = f"The audit log is unavailable: {exc.message}"
    entries = list((answer or {}).get("entries") or [])
    columns = sorted({k for e in entries for k in e if isinstance(e, dict)} - {"id"})
    preferred = [c for c in ("at", "actor", "action", "target") if c in columns]
    columns = preferred + [c for c in columns if c not in preferred]
    return page(
        request,
        "audit.html",
        title="Audit log",
        unavailable=unavailable,
        entries=entries,
        columns=columns,
        filters=filters,
        next_page=(answer or {}).get("next"),
    )
