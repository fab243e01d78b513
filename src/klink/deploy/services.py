"""The engine's collaborators in a running Klink: the services' HTTP clients and providers.

Config is read through ``ConfigClient``, metadata through ``MetadataClient``; providers are
built per environment with ``build_provider`` and kept (they are thread-safe).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from klink.config.client import ConfigClient
from klink.deploy.approvals import Decisions
from klink.deploy.context import Services
from klink.metadata.client import MetadataClient
from klink.providers import build_provider
from klink.providers.base import Provider
from klink.service.runtime import Runtime


class ProviderCache:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._providers: dict[str, tuple[str, Provider]] = {}

    def __call__(self, env: str, metadata: Mapping[str, Any]) -> Provider:
        key = repr(sorted((k, repr(v)) for k, v in metadata.items()))
        with self._lock:
            cached = self._providers.get(env)
            if cached is not None and cached[0] == key:
                return cached[1]
        if not metadata:
            from klink.errors import InvalidInput

            raise InvalidInput(f"environment {env!r} has no provider metadata", field="env")
        provider = build_provider(env, metadata, self.settings)
        with self._lock:
            self._providers[env] = (key, provider)
        return provider


def probe(url: str) -> bool:
    """GET ``url`` (plain HTTP on loopback); True on a 200 answer.

    The standard library's http.client, a connection per probe: ``httpx.get`` builds a client
    with a TLS context on every call, which cost ~50 ms of CPU per probe here."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=2.0)
    try:
        connection.request("GET", parts.path or "/")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def runtime_services(runtime: Runtime) -> Services:
    cache = runtime.extras.get("deploy.providers")
    if cache is None:
        cache = runtime.extras["deploy.providers"] = ProviderCache(runtime.settings)
    return Services(
        metadata=MetadataClient(runtime.http("metadata")),
        config=ConfigClient(runtime.http("config")),
        provider_for=cache,
        notifier=runtime.notifier,
        probe=probe,
        clock=runtime.clock,
        decisions=Decisions(runtime.engine),
    )
