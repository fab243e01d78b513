"""Deployments: the history, one deployment (live), and the diff between two of them.

The history filters by app, env and status in the deploy API; the person filter is applied
here to the newest ``SCAN`` deployments the other filters return (the API has no ``user``
filter), which the page says. A filter that is not a name, a status or a number is a 400 page
naming it (the deploy API's own validation, shown as a page).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from klink.errors import InvalidInput, NotFound
from klink.web import views
from klink.web.reads import Reads, offloaded, optional, together
from klink.web.render import page, reads_of, signed_in
from klink.web.session import Session

router = APIRouter(include_in_schema=False)
Visitor = Annotated[Session, Depends(signed_in)]
SCAN = 300  # deployments read to filter by person (the deploy API has no user filter)
ID_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_")


@router.get("/deployments", response_class=HTMLResponse)
@offloaded
def history(
    request: Request,
    session: Visitor,
    app: str | None = None,
    env: str | None = None,
    status: str | None = None,
    user: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    reads = reads_of(request, session)
    filters = {
        "app": views.filter_name(app, "app"),
        "env": views.filter_name(env, "env"),
        "status": status or None,
    }
    person = (user or "").strip() or None
    found = reads.deploy.deployments(**filters, limit=SCAN if person else limit)
    if person:
        found = [d for d in found if d["user"] == person][:limit]
    context: dict[str, Any] = {
        "found": found,
        "filters": {**filters, "user": person, "limit": limit},
        "scanned": SCAN if person else None,
    }
    return page(request, "history.html", title="Deployments", **context)


def checked_id(value: str) -> str:
    if not value or len(value) > 64 or not set(value) <= ID_CHARS:
        raise NotFound(f"there is no deployment {value!r}", field="id")
    return value


def deployment_context(reads: Reads, deployment_id: str) -> dict[str, Any]:
    found = reads.deployment(deployment_id)
    d = found["d"]
    return {
        **found,
        "waiting": views.waiting_for(d, found["tasks"]),
        "plan": views.plan_rows(d.get("plan") or [], found["tasks"]),
        "commands": views.commands(d),
        "final": d["status"] in views.FINAL,
        "since": views.digest(views.deployment_fingerprint(d)),
    }


@router.get("/deployments/{deployment_id}", response_class=HTMLResponse)
@offloaded
def deployment(request: Request, deployment_id: str, session: Visitor) -> Response:
    reads = reads_of(request, session)
    context = deployment_context(reads, checked_id(deployment_id))
    d = context["d"]
    found, (params, _) = together(
        lambda: reads.deploy.deployments(app=d["app"], env=d["env"], limit=10),
        lambda: optional(_params, reads, d),
    )
    others = [o for o in found if o["id"] != d["id"]]
    return page(
        request,
        "deployment.html",
        title=f"Deployment {d['id']}",
        others=others,
        params=params,
        **context,
    )


def _params(reads: Reads, d: dict[str, Any]) -> dict[str, Any]:
    commit = d.get("commit")
    if not commit:
        return {}
    _hash, data = reads.config.file(d["app"], d["env"], "deployment-params.json", at=commit)
    return dict(data or {})


def _image(images: list[dict[str, Any]], image_id: str | None) -> dict[str, Any]:
    for image in images:
        if image["id"] == image_id:
            return image
    return {"id": image_id}


@router.get("/diff", response_class=HTMLResponse)
@offloaded
def diff(request: Request, session: Visitor, a: str = "", b: str = "") -> Response:
    """What changed from deployment ``a`` to ``b`` (one app+env): image, config, user-data,
    parameters."""
    for value, field in ((a, "a"), (b, "b")):
        if not value:
            raise InvalidInput(f"{field}: choose a deployment to compare", field=field)
        if not set(value) <= ID_CHARS or len(value) > 64:
            raise InvalidInput(f"{field}: {value!r} is not a deployment id", field=field)
    reads = reads_of(request, session)
    first, second = together(lambda: reads.deploy.deployment(a), lambda: reads.deploy.deployment(b))
    if (first["app"], first["env"]) != (second["app"], second["env"]):
        raise InvalidInput(
            f"b: {b} is of {second['app']} in {second['env']}, not of {first['app']} in "
            f"{first['env']}; compare two deployments of one app and environment",
            field="b",
        )
    app, env = first["app"], first["env"]
    commits = (first.get("commit"), second.get("commit"))
    (images, _), (config, config_problem), (params_a, _), (params_b, _) = together(
        lambda: optional(reads.bake.images, app),
        lambda: optional(reads.config.diff, app, env, *commits) if all(commits) else (None, None),
        lambda: optional(_params, reads, first),
        lambda: optional(_params, reads, second),
    )
    user_data = views.text_diff(
        views.user_data(first), views.user_data(second), f"{a}/user-data", f"{b}/user-data"
    )
    return page(
        request,
        "diff.html",
        title=f"{app} in {env}: {a} → {b}",
        a=first,
        b=second,
        image_a=_image(images or [], first.get("image")),
        image_b=_image(images or [], second.get("image")),
        config=config,
        config_problem=config_problem,
        user_data=user_data,
        params=views.params_diff(params_a or {}, params_b or {}),
        summary=views.params_diff(
            {k: first.get(k) for k in ("kind", "user", "message", "status", "undo")},
            {k: second.get(k) for k in ("kind", "user", "message", "status", "undo")},
        ),
    )
