"""A small, bounded HTTP load generator on loopback, for the quickstart, e2e tests and benches.

Threads send keep-alive GET requests to one URL until stopped (or until ``max_seconds``), and
count what was sent, what failed (a connection error or a non-2xx answer), and which versions
answered (the ``version`` field of a JSON body). Standard library only. The target must be a
loopback address: this tool is for proving zero-downtime swaps on this machine, nothing else.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class LoadResult:
    def __init__(
        self,
        sent: int,
        failed: int,
        versions: dict[str, int],
        seconds: float,
        errors: dict[str, int],
    ) -> None:
        self.sent = sent
        self.failed = failed
        self.versions = versions
        self.seconds = seconds
        self.errors = errors

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.sent,
            "failed": self.failed,
            "versions_seen": sorted(self.versions),
            "seconds": round(self.seconds, 3),
            "errors": self.errors,
        }


class LoadGenerator:
    """``with LoadGenerator(url) as load: …`` then ``load.result``."""

    def __init__(
        self, url: str, *, threads: int = 4, max_seconds: float = 300.0, pause: float = 0.0
    ) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if not ipaddress.ip_address(host if host != "localhost" else "127.0.0.1").is_loopback:
            raise ValueError(f"load generation is for loopback addresses only, not {host!r}")
        self.host, self.port, self.path = host, parts.port or 80, parts.path or "/"
        self.threads, self.max_seconds, self.pause = threads, max_seconds, pause
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sent = 0
        self._failed = 0
        self._versions: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._workers: list[threading.Thread] = []
        self._start = 0.0
        self.result: LoadResult | None = None

    def __enter__(self) -> LoadGenerator:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._start = time.monotonic()
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> LoadResult:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)
        with self._lock:
            self.result = LoadResult(
                self._sent,
                self._failed,
                dict(self._versions),
                time.monotonic() - self._start,
                dict(self._errors),
            )
        return self.result

    def _run(self) -> None:
        deadline = self._start + self.max_seconds
        connection: http.client.HTTPConnection | None = None
        sent = failed = 0
        versions: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        while not self._stop.is_set() and time.monotonic() < deadline:
            if connection is None:
                connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
            current = connection
            sent += 1
            try:
                current.request("GET", self.path)
                response = current.getresponse()
                body = response.read()
                if not 200 <= response.status < 300:
                    failed += 1
                    errors[f"HTTP {response.status}"] += 1
                else:
                    versions[_version_of(body)] += 1
                if response.will_close:
                    current.close()
                    connection = None
            except (OSError, http.client.HTTPException) as exc:
                failed += 1
                errors[type(exc).__name__] += 1
                current.close()
                connection = None
            if self.pause:
                time.sleep(self.pause)
        if connection is not None:
            connection.close()
        with self._lock:
            self._sent += sent
            self._failed += failed
            self._versions.update(versions)
            self._errors.update(errors)


def _version_of(body: bytes) -> str:
    try:
        value = json.loads(body)
    except ValueError:
        return "?"
    if isinstance(value, dict) and isinstance(value.get("version"), str):
        return str(value["version"])
    return "?"
