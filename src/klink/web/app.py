"""The web service: a read-only UI of the platform, server-rendered, live through SSE.

Built like every service (``make_service``: health, metrics) and mounted last, at ``/`` of the
combined server, so the API prefixes keep their routes; alone it is ``klink serve --service
web`` with the other services at ``KLINK_<SERVICE>_URL``. Pages are Jinja2 templates; htmx
(pinned, served from ``/static/``) adds lazy health cells, filter forms without reloads and the
SSE live views; without JavaScript every page still works, minus the live updates.

Nothing here changes the platform: the only POSTs are sign-in and sign-out. Every answer
carries a Content-Security-Policy that allows scripts and styles from this origin only (no
inline script or style), and errors are pages: 404 for an unknown app, env or deployment, 400
naming the bad filter, a redirect to sign-in for a missing, forged or expired session.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from klink.errors import KlinkError
from klink.service import Runtime, make_service
from klink.web import live, pages, pages_deploy, pages_more
from klink.web.render import SignInRequired, page
from klink.web.session import COOKIE, Sessions, secret

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _sign_in_again(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.headers.get("hx-request"):
        # htmx follows a redirect inside the fragment; tell it to load the whole page instead.
        response: Response = Response(status_code=401, headers={"HX-Redirect": "/sign-in"})
    else:
        response = RedirectResponse(f"/sign-in?next={quote(target, safe='/')}", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _install_pages_errors(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, _exc: SignInRequired) -> Response:
        return _sign_in_again(request)

    @app.exception_handler(KlinkError)
    async def klink_error(request: Request, exc: KlinkError) -> Response:
        if exc.status == 401:
            return _sign_in_again(request)
        status = exc.status if 400 <= exc.status < 600 else 500
        return page(request, "error.html", status, title=_TITLES.get(status, "Error"), error=exc)

    @app.exception_handler(RequestValidationError)
    async def bad_input(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body")]
        field = ".".join(loc) or None
        error = KlinkError(f"{field or 'input'}: {first.get('msg', 'invalid')}", field=field)
        return page(request, "error.html", 400, title="Bad request", error=error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        error = KlinkError(str(exc.detail))
        status = exc.status_code
        if "text/html" not in request.headers.get("accept", ""):
            # At "/" the UI also answers API clients that miss a prefix: in their own terms.
            code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
            body = {"error": {"code": code, "message": f"{request.url.path}: {exc.detail}"}}
            return JSONResponse(body, status_code=status)
        return page(request, "error.html", status, title=_TITLES.get(status, "Error"), error=error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        error = KlinkError(f"internal error ({type(exc).__name__}); see the server log")
        return page(request, "error.html", 500, title="Error", error=error)


_TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    502: "A service did not answer",
}


def create_app(runtime: Runtime) -> FastAPI:
    routers = [pages.router, pages_deploy.router, pages_more.router, live.router]
    app = make_service("web", runtime, routers, description="Read-only web UI")
    # Pages, not an API: no OpenAPI document or docs for them.
    hidden = {app.openapi_url, app.docs_url, app.swagger_ui_oauth2_redirect_url}
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", "") not in hidden]
    app.state.sessions = Sessions(
        secret(runtime.settings.home),
        secure=runtime.settings.public_url.startswith("https://"),
    )
    _install_pages_errors(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        start = time.perf_counter()
        response: Response = await call_next(request)
        # The page's time at the server (W3C Server-Timing), what bench/web_pages.py reads.
        elapsed = (time.perf_counter() - start) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed:.2f}"
        for key, value in HEADERS.items():
            response.headers.setdefault(key, value)
        if request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "public, max-age=3600"
        elif isinstance(response, HTMLResponse) or "text/html" in response.headers.get(
            "content-type", ""
        ):
            response.headers["Cache-Control"] = "no-store"
        return response

    return app
