"""What every service shares in one process: settings, the database, tokens and HTTP clients.

``Runtime.open`` connects to the database, applies migrations, creates the first admin token
when none exists (written to ``KLINK_HOME/admin-token``, mode 600) and a fresh internal token
with which services call each other through their HTTP clients. Tests build a Runtime from a
dict of settings and may replace ``http_factory`` so that clients reach an in-process app.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from klink.settings import Settings, private_dir

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

INTERNAL_TOKEN_NAME = "klink"  # noqa: S105 - a name, not a secret


def utcnow() -> datetime:
    return datetime.now(UTC)


class Notifier(Protocol):
    def send(self, rooms: list[str], message: str, event: Mapping[str, Any]) -> list[str]: ...


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    internal_token: str = ""
    clock: Callable[[], datetime] = utcnow
    # service name -> httpx.Client; replaced in tests to call an in-process app.
    http_factory: Callable[[str], httpx.Client] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    _clients: dict[str, httpx.Client] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> Runtime:
        from klink import store
        from klink.auth import tokens

        private_dir(settings.home)  # 0700: the database, tokens and logs live in it
        engine = store.create_engine(settings.database_url)
        if migrate:
            store.migrate(engine)
        runtime = cls(settings=settings, engine=engine)
        tokens.bootstrap_admin_token(engine, settings.admin_token_path, runtime.clock())
        runtime.internal_token = tokens.internal_token(
            engine, settings.home / "internal-token", runtime.clock()
        )
        return runtime

    def http(self, service: str) -> httpx.Client:
        """An authenticated client for ``service`` (``metadata``, ``config``, …)."""
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                if self.http_factory is not None:
                    client = self.http_factory(service)
                else:
                    import httpx

                    client = httpx.Client(
                        base_url=self.settings.service_url(service),
                        headers={"Authorization": f"Bearer {self.internal_token}"},
                        timeout=60.0,
                    )
                self._clients[service] = client
            return client

    @property
    def notifier(self) -> Notifier:
        """The one notifier, built once from settings, for deployments and drift alike (a test
        may set ``extras["notifier"]``)."""
        with self._lock:
            found = self.extras.get("notifier")
            if found is None:
                from klink.notify import dispatcher_for

                found = self.extras["notifier"] = dispatcher_for(self)
            notifier: Notifier = found
            return notifier

    def close(self) -> None:
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.close()
        self.engine.dispose()
