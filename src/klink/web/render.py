"""Templates and the signed-in visitor: what every page handler shares.

Templates are Jinja2 with autoescaping, loaded from the package once. ``signed_in`` is the
dependency of every page but sign-in: it reads the session cookie or raises ``SignInRequired``,
which the app turns into a redirect to ``/sign-in`` (with the page to come back to).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from klink import __version__
from klink.web import views
from klink.web.reads import Reads
from klink.web.session import COOKIE, Session, Sessions


class SignInRequired(Exception):
    """No valid session (none, forged, expired, or a token the services no longer accept)."""


@lru_cache(maxsize=1)
def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("klink.web", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["short"] = views.short
    env.filters["duration"] = views.duration
    env.globals["version"] = __version__
    env.globals["num"] = views.number
    return env


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


def session_of(request: Request) -> Session | None:
    return sessions_of(request).load(request.cookies.get(COOKIE))


def signed_in(request: Request) -> Session:
    session = session_of(request)
    if session is None:
        raise SignInRequired()
    request.state.session = session
    return session


def reads_of(request: Request, session: Session) -> Reads:
    return Reads(request.app.state.runtime, session.token)


def html(name: str, status: int = 200, **context: Any) -> str:
    now = datetime.now(UTC)
    return (
        templates()
        .get_template(name)
        .render(
            now=now,
            ago=lambda value: views.ago(value, now),
            between=lambda a, b: views.between(a, b, now),
            **context,
        )
    )


def page(
    request: Request, name: str, status: int = 200, *, title: str = "", **context: Any
) -> HTMLResponse:
    session: Session | None = getattr(request.state, "session", None)
    body = html(name, session=session, path=request.url.path, title=title, **context)
    return HTMLResponse(body, status_code=status)
