"""What each service's ``/healthcheck`` checks, and the cache that keeps it cheap.

Every service checks the database and that the internal token (with which services call each
other) is still registered: a token deleted behind the API's back would otherwise fail every
service-to-service call while every healthcheck said 200. A service that calls others checks
that each answers (``NEEDS``: the call graph, kept beside the services' clients), and one that
runs a tool checks that the tool is there when an environment needs it (git for builds; Packer
when an aws environment exists); deploy and infra check the local cloud when a local
environment exists (its daemon answers, or it can be started: HAProxy is there; that check is
the local provider's own, ``providers/local/health.py``, passed in by those services). The
provider's API is not called from here: a healthcheck must never reach a cloud (nor, in tests,
anything off loopback) for environments it may not even serve; a deployment reports its
provider's errors itself. Each check's result is kept
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
        return provider is not None and not uses(runtime, provider)

    return HealthCheck(name, check)


def uses(runtime: Runtime, provider: str) -> bool:
    """Whether some environment is on ``provider``, asked of the metadata service's API (the
    shared core imports no service)."""
    from klink.service.client import ServiceClient

    found = ServiceClient(runtime.http("metadata")).request(
        "GET", "/environments", params={"view": "full"}
    )
    records = found.get("environments", []) if isinstance(found, dict) else []
    return any((r.get("metadata") or {}).get("provider") == provider for r in records)


def local_cloud(runtime: Runtime, healthy: Callable[..., bool]) -> HealthCheck:
    """The ``local-cloud`` check of a service that uses the local provider, with the provider's
    own ``healthy(home, needed)``."""
    return HealthCheck(
        "local-cloud", lambda: healthy(runtime.settings.home, lambda: uses(runtime, "local"))
    )


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
    seconds = runtime.settings.health_cache_seconds
    return [HealthCheck(c.name, cached(c.name, c.check, seconds)) for c in found]
