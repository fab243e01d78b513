"""What each service's ``/healthcheck`` checks, and the cache that keeps it cheap.

Every service checks the database and that the internal token (with which services call each
other) is still registered: a token deleted behind the API's back would otherwise fail every
service-to-service call while every healthcheck said 200. A service that calls others checks
that each answers (``NEEDS``: the call graph, kept beside the services' clients), and one that
runs a tool checks that the tool is there when an environment needs it (git for builds; Packer
when an aws environment exists); deploy and infra check the local cloud when a local
environment exists (its daemon answers, or it can be started: HAProxy is there). The provider's
API is not called from here: a healthcheck must never reach a cloud (nor, in tests, anything
off loopback) for environments it may not even serve; a deployment reports its provider's
errors itself. Each check's result is kept
``KLINK_HEALTH_CACHE_SECONDS`` (5 s), so a load balancer polling every second costs one
round of checks per five seconds.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from klink.service.runtime import INTERNAL_TOKEN_NAME, Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthCheck:
    name: str
    check: Callable[[], bool]


# service -> the services it calls through their HTTP clients.
NEEDS: dict[str, tuple[str, ...]] = {
    "metadata": ("config",),  # a new application's config repositories
    "config": ("metadata",),
    "build": ("metadata",),
    "bake": ("metadata", "build", "deploy"),
    "infra": ("metadata", "config"),
    "deploy": ("metadata", "config"),
}
# service -> (tool, the provider whose environments need it, or None: always).
TOOLS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "build": (("git", None),),
    "bake": (("packer", "aws"),),
}
LOCAL_CLOUD = frozenset({"deploy", "infra"})


def cached(name: str, check: Callable[[], bool], seconds: float) -> Callable[[], bool]:
    """``check`` answered from its last result for ``seconds`` (an exception is a failure,
    logged)."""
    lock = threading.Lock()
    last: list[tuple[float, bool]] = []

    def run() -> bool:
        with lock:
            if last and time.monotonic() - last[0][0] < seconds:
                return last[0][1]
        try:
            ok = bool(check())
        except Exception:
            log.warning("health check %s failed", name, exc_info=True)
            ok = False
        with lock:
            last[:] = [(time.monotonic(), ok)]
        return ok

    return run


def internal_token(runtime: Runtime) -> HealthCheck:
    def check() -> bool:
        from klink.auth import tokens
        from klink.errors import Unauthorized

        try:
            principal = tokens.verify(runtime.engine, runtime.internal_token)
        except Unauthorized:
            return False
        return principal.name == INTERNAL_TOKEN_NAME and principal.role == "admin"

    return HealthCheck("internal-token", check)


def answers(runtime: Runtime, service: str) -> HealthCheck:
    """``service`` answers its ``/ping`` through the very client other services use."""

    def check() -> bool:
        response = runtime.http(service).get("/ping", timeout=5.0)
        return response.status_code == 200

    return HealthCheck(service, check)


def tool(runtime: Runtime, name: str, provider: str | None) -> HealthCheck:
    def check() -> bool:
        if shutil.which(name) is not None:
            return True
        return provider is not None and not _uses(runtime, provider)

    return HealthCheck(name, check)


def _uses(runtime: Runtime, provider: str) -> bool:
    from klink.metadata.store import MetadataStore

    return bool(MetadataStore(runtime.engine).all("environment", ("provider", provider)))


def local_cloud(runtime: Runtime) -> HealthCheck:
    """This home's local cloud daemon answers ``/health``, or none runs and one can start
    (the provider starts it when first used); only when a local environment exists."""

    def check() -> bool:
        if not _uses(runtime, "local"):
            return True
        from klink.providers.local import daemon

        info = daemon.running(runtime.settings.home)
        if info is None:
            return shutil.which("haproxy") is not None
        import httpx

        return httpx.get(f"{info['url']}/health", timeout=2.0).status_code == 200

    return HealthCheck("local-cloud", check)


def checks_of(name: str, runtime: Runtime, own: Sequence[HealthCheck]) -> list[HealthCheck]:
    """The database, the internal token, ``own`` checks, the services and tools ``name``
    needs; each cached."""
    from klink import store

    found = [
        HealthCheck("database", lambda: store.ping(runtime.engine)),
        internal_token(runtime),
        *own,
    ]
    taken = {check.name for check in found}
    found += [answers(runtime, s) for s in NEEDS.get(name, ()) if s not in taken]
    found += [tool(runtime, t, p) for t, p in TOOLS.get(name, ()) if t not in taken]
    if name in LOCAL_CLOUD:
        found.append(local_cloud(runtime))
    seconds = runtime.settings.health_cache_seconds
    return [HealthCheck(c.name, cached(c.name, c.check, seconds)) for c in found]
