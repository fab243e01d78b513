"""FakeCloud: one FakeProvider served to several processes over loopback. A FAKE.

``FakeProvider`` lives in one process (with ``state_path`` each process still keeps its own
copy in memory and overwrites the file: not safe for several writers). Tests and benchmarks
that run several ``klink worker`` processes need one cloud that all of them see, as they would
see AWS: ``FakeCloud`` serves a FakeProvider from the test's own process (a
``multiprocessing.managers`` server on 127.0.0.1, threads per connection, the provider's lock
serialising calls), so the test inspects the very object the workers changed. In the workers,
``FakeCloudProvider`` (registered in place of a provider by the test's harness) forwards every
call of the provider interface to it; an environment's metadata names the server
(``fakeCloud: "127.0.0.1:PORT"``; an environment without it gets the real local provider).
Errors raised by the fake (``NotFound``…) reach the caller as the same types.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from multiprocessing.managers import BaseManager
from typing import Any, ClassVar

from klink.providers.base import Provider
from klink.testing.fake_provider import FakeProvider

log = logging.getLogger(__name__)

AUTHKEY = b"klink-fake-cloud"  # loopback only; a fake's key, not a secret


class _Manager(BaseManager):
    pass


_Manager.register("provider")


class FakeCloud:
    """Serve ``provider`` on 127.0.0.1 (a free port) until ``close``."""

    def __init__(self, provider: FakeProvider) -> None:
        self.provider = provider

        class Serving(BaseManager):
            pass

        Serving.register("provider", callable=lambda: provider)
        server: Any = Serving(address=("127.0.0.1", 0), authkey=AUTHKEY).get_server()
        # Not ``serve_forever``: it calls sys.exit in its thread and resets sys.stdout.
        server.stop_event = self._stopped = threading.Event()
        self._server = server
        address: tuple[str, int] = server.address
        host, port = address
        self.address = f"{host}:{port}"
        self._thread = threading.Thread(target=self._accept, name="fake-cloud", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection = self._server.listener.accept()
            except Exception as exc:  # a refused handshake, or the wake-up of ``close``
                log.debug("fake cloud: connection refused: %s", exc)
                continue
            threading.Thread(
                target=self._server.handle_request, args=(connection,), daemon=True
            ).start()

    def close(self) -> None:
        self._stopped.set()
        host, _, port = self.address.rpartition(":")
        # Wake the blocked accept; its handshake fails and the loop sees the stop.
        with contextlib.suppress(OSError):
            socket.create_connection((host, int(port)), timeout=2).close()
        self._thread.join(timeout=5)
        self._server.listener.close()


def _forward(name: str) -> Callable[..., Any]:
    def call(self: FakeCloudProvider, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.remote(), name)(*args, **kwargs)

    call.__name__ = name
    return call


class FakeCloudProvider(Provider):
    """The provider interface, every call forwarded to a ``FakeCloud``."""

    name = "fake-cloud"
    http_probes: ClassVar[bool] = False

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.address = (host, int(port))
        self._local = threading.local()  # a proxy (and its connection) per thread

    @classmethod
    def from_environment(cls, env: str, metadata: Mapping[str, Any], settings: Any) -> Provider:
        """The fake for an environment that names one (``fakeCloud``), else the real local
        provider: a test registers this class as ``local`` and still deploys to real local
        environments beside the fake ones."""
        if "fakeCloud" not in metadata:
            from klink.providers.local import LocalProvider

            return LocalProvider.from_environment(env, metadata, settings)
        return cls(str(metadata["fakeCloud"]))

    def remote(self) -> Any:
        proxy = getattr(self._local, "proxy", None)
        if proxy is None:
            manager = _Manager(address=self.address, authkey=AUTHKEY)
            manager.connect()
            proxy = self._local.proxy = manager.provider()  # type: ignore[attr-defined]
        return proxy


for _name in sorted(Provider.__abstractmethods__ - {"from_environment"}):
    setattr(FakeCloudProvider, _name, _forward(_name))
FakeCloudProvider.__abstractmethods__ = frozenset()
