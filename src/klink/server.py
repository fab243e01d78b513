"""The combined server: every service mounted under its prefix in one ASGI app.

``klink serve`` runs them all in one process (the default); ``klink serve --service NAME``
runs one alone. The web UI (``web``) is mounted last, at ``/``, so that every API prefix keeps
its paths; without it ``/`` answers a JSON index of the services. Services reach each other
only through their HTTP clients, so both shapes run the same code. Starlette does not run the
lifespans of mounted apps, so the combined app's lifespan enters each service's in turn (and
leaves them in reverse order).

Starting the local cloud is the composition's decision too: when an environment uses the local
provider and this ``KLINK_HOME`` has no running daemon, ``serve`` starts one (detached, so that
instances and traffic outlive the server). The server reads the environments from the store it
holds; the provider only runs its daemon and knows no service. When no environment uses it,
this costs one small query and imports nothing more.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Mount, Route

from klink import __version__
from klink.service.limits import json_http_error
from klink.service.runtime import Runtime
from klink.settings import Settings

log = logging.getLogger(__name__)

# name -> "module:factory"; the prefix is "/" + name. Each factory takes a Runtime.
SERVICES: dict[str, str] = {
    "auth": "klink.auth.api:create_app",
    "metadata": "klink.metadata.api:create_app",
    "deploy": "klink.deploy.api:create_app",
    "build": "klink.build.api:create_app",
    "bake": "klink.bake.api:create_app",
    "config": "klink.config.api:create_app",
    "infra": "klink.infra.api:create_app",
    "chat": "klink.chat.api:create_app",
}
# The read-only web UI: not an API prefix but the site itself, mounted last at "/" so that every
# prefix above keeps winning its paths. ``--service web`` runs it alone.
ROOT = "web"
FACTORIES = {**SERVICES, ROOT: "klink.web.app:create_app"}


def build_service(name: str, runtime: Runtime) -> FastAPI:
    module_name, _, factory = FACTORIES[name].partition(":")
    app: FastAPI = getattr(importlib.import_module(module_name), factory)(runtime)
    return app


def create_app(runtime: Runtime, services: Sequence[str] | None = None) -> Starlette:
    names = list(FACTORIES) if not services else list(services)
    unknown = [n for n in names if n not in FACTORIES]
    if unknown:
        from klink.errors import InvalidInput

        raise InvalidInput(
            f"unknown service {unknown[0]!r}; services: {', '.join(FACTORIES)}", field="service"
        )
    apps = {name: build_service(name, runtime) for name in names}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for sub in apps.values():
                await stack.enter_async_context(sub.router.lifespan_context(sub))
            yield

    async def index(_request: Request) -> JSONResponse:
        return JSONResponse(
            {"name": "klink", "version": __version__, "services": {n: f"/{n}" for n in apps}}
        )

    # Without the web UI, "/" answers the JSON index; with it, "/" is the UI's overview.
    routes: list[Any] = [] if ROOT in apps else [Route("/", index)]
    routes += [Mount(f"/{name}", app=sub) for name, sub in apps.items() if name != ROOT]
    if ROOT in apps:
        routes.append(Mount("", app=apps[ROOT]))
    server = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: json_http_error},  # a JSON 404 outside every service
    )
    server.state.runtime = runtime
    server.state.services = apps
    return server


def start_local_cloud(runtime: Runtime) -> str | None:
    """The local cloud's URL when an environment is on the local provider (started if needed)."""
    from klink.metadata.store import MetadataStore

    local_envs = MetadataStore(runtime.engine).all("environment", ("provider", "local"))
    if not local_envs:
        return None
    from klink.providers.local import daemon

    try:
        url = daemon.ensure(runtime.settings.home)
    except Exception as exc:  # the server still runs; deploys to local envs will say why
        log.warning("local cloud did not start: %s", exc)
        return None
    log.info("local cloud for %d environment(s) at %s", len(local_envs), url)
    return url


def serve(settings: Settings, services: Sequence[str] | None = None) -> None:
    """Run the server in the foreground until SIGINT/SIGTERM."""
    import uvicorn

    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    runtime = Runtime.open(settings)
    start_local_cloud(runtime)
    app = create_app(runtime, services)
    pid_path = settings.home / "serve.pid"
    pid_path.write_text(f"{os.getpid()}\n")
    try:
        uvicorn.run(
            app,
            host=settings.listen_host,
            port=settings.listen_port,
            log_level=settings.log_level.lower(),
            access_log=False,
        )
    finally:
        if pid_path.exists() and pid_path.read_text().strip() == str(os.getpid()):
            pid_path.unlink()
        runtime.close()
