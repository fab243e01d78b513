"""What the canary's end-to-end tests and benchmark share: load with a timestamp per answer, and
one canary deployment of ``hello`` on the local provider, measured.

``TimedLoad`` sends keep-alive GETs through the balancer from a few threads and keeps, for each
answer, when it came and whether it failed (connection error or non-2xx), so that the requests
sent while the canary had traffic can be counted afterwards from the deployment's task times.
``run_canary`` commits the canary's config (the example service's faults are application
properties), deploys an image, waits for the end, and returns what happened: status, undo, the
canary report, when the canary took traffic and when traffic was back on production, and the
requests and failures in between against weight x error rate x requests.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from tests.e2e.platform import Platform, push_config

PORT_PROPS = ("service.port", "healthcheck.path")


@dataclass
class TimedLoad:
    url: str
    threads: int = 4
    pause: float = 0.002  # seconds between one thread's requests: load, not a saturated machine
    answers: list[tuple[float, bool]] = field(default_factory=list)  # (epoch seconds, failed)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        assert (parts.hostname or "").startswith("127."), "load goes to loopback only"
        self.host, self.port, self.path = parts.hostname or "", parts.port or 80, parts.path or "/"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def __enter__(self) -> TimedLoad:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=10)

    def _run(self) -> None:
        connection: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            failed = True
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(self.host, self.port, timeout=5)
                connection.request("GET", self.path)
                response = connection.getresponse()
                response.read()
                failed = not 200 <= response.status < 300
                if response.getheader("connection", "").lower() == "close":
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException):
                if connection is not None:
                    connection.close()
                connection = None
                time.sleep(0.01)
            with self._lock:
                self.answers.append((time.time(), failed))
            self._stop.wait(self.pause)

    def between(self, start: float, end: float) -> tuple[int, int]:
        """(answers, failed answers) that came in [start, end]."""
        with self._lock:
            inside = [failed for at, failed in self.answers if start <= at <= end]
        return len(inside), sum(inside)


def _epoch(value: str | None) -> float:
    assert value, "a task that never ran"
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _ended(tasks: list[dict[str, Any]], action: str, last: bool = False) -> float:
    found = [t for t in tasks if t["action"] == action and t.get("endedAt")]
    assert found, f"{action} never ended: {[t['action'] for t in tasks]}"
    return _epoch((found[-1] if last else found[0])["endedAt"])


@dataclass
class CanaryRun:
    record: dict[str, Any]
    canary: dict[str, Any]
    started: float  # the canary took traffic (canary_traffic ended)
    ended: float  # traffic back on production (undo) or on the canary alone (promotion)
    requests: int  # answers between the two
    failed: int
    weight: int
    error_rate: float

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def expected_failed(self) -> float:
        """weight x error rate x requests: what a canary at that weight should cost users."""
        return self.requests * self.weight / 100 * self.error_rate


def run_canary(
    platform: Platform,
    load: TimedLoad,
    image: str,
    props: Mapping[str, Any],
    *,
    weight: int,
    error_rate: float = 0.0,
    timeout: float = 240.0,
) -> CanaryRun:
    """Deploy ``image`` with application properties ``props`` (the faults) as a canary."""
    push_config(platform, "hello", "dev", {"application-properties.json": dict(props)})
    deployment = platform.deploy("hello", "dev", image, f"canary {dict(props)}")
    record = platform.wait(deployment, timeout=timeout, paused=True)
    tasks = platform.tasks(deployment)
    canary = platform.call("GET", f"/deploy/deployments/{deployment}/canary")
    started = _ended(tasks, "canary_traffic")
    if record["undo"]:
        ended = _ended(tasks, "restore_traffic_if_warm")
    else:
        ended = _ended(tasks, "shift_traffic", last=True)
    requests, failed = load.between(started, ended)
    return CanaryRun(record, canary, started, ended, requests, failed, weight, error_rate)
