"""Long work (a build, a bake) as a job whose output streams live to every caller.

A job runs in a thread of its own; its log lines and its outcome are kept in memory. The HTTP
layer answers with a chunked ``application/x-ndjson`` response: one ``{"log": "…"}`` object
per output line as it comes, then exactly one final ``{"result": {…}}`` or
``{"error": {"code", "message", "output"?}}``; an empty line every 15 s of silence keeps idle
connections (and proxies) from timing out. Errors found before the work starts (an unknown
app, a bad field) are ordinary 4xx answers instead.

Jobs with the same key coalesce: while one runs, a second ``start`` with its key joins it
(sees its whole log from the beginning and gets the same result). That is how one bake per
app+version+target runs at a time. Shared by the build and bake services.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable, Hashable, Iterator
from functools import partial
from typing import Any

from klink.errors import ExternalCommandError, KlinkError

log = logging.getLogger(__name__)


class Job:
    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.id = secrets.token_hex(6)
        self.lines: list[str] = []
        self.result: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self._cond = threading.Condition()

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None

    def log(self, line: str) -> None:
        with self._cond:
            self.lines.append(line)
            self._cond.notify_all()

    def finish(self, result: dict[str, Any]) -> None:
        with self._cond:
            self.result = result
            self._cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        if isinstance(exc, KlinkError):
            error: dict[str, Any] = {"code": exc.code, "message": exc.message}
            if exc.field is not None:
                error["field"] = exc.field
            if isinstance(exc, ExternalCommandError) and exc.output:
                error["output"] = exc.output
        else:
            log.error("job %s failed", self.key, exc_info=exc)
            error = {"code": "internal", "message": f"internal error ({type(exc).__name__})"}
        with self._cond:
            self.error = error
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.done, timeout=timeout)

    def events(self, poll: float = 15.0) -> Iterator[dict[str, Any] | None]:
        """Every log line from the first, as it comes, then the outcome; ``None`` whenever
        ``poll`` seconds pass with nothing new (a heartbeat for idle connections)."""
        sent = 0
        while True:
            with self._cond:
                self._cond.wait_for(partial(self._moved, sent), timeout=poll)
                fresh = self.lines[sent:]
                done = self.done
            sent += len(fresh)
            if not fresh and not done:
                yield None
            for line in fresh:
                yield {"log": line}
            if done and sent == len(self.lines):
                if self.error is not None:
                    yield {"error": self.error}
                else:
                    yield {"result": self.result}
                return

    def _moved(self, sent: int) -> bool:
        return self.done or len(self.lines) > sent

    def ndjson(self, poll: float = 15.0) -> Iterator[bytes]:
        """The response body: one JSON object per line; an empty line as a heartbeat."""
        for event in self.events(poll):
            yield b"\n" if event is None else (json.dumps(event) + "\n").encode()


class JobRegistry:
    """Running jobs by key; at most one per key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Hashable, Job] = {}

    def start(self, key: Hashable, work: Callable[[Job], dict[str, Any]]) -> tuple[Job, bool]:
        """Start ``work(job)`` in a thread, or join the running job of ``key``.

        Returns the job and whether it was joined rather than started.
        """
        with self._lock:
            running = self._running.get(key)
            if running is not None:
                return running, True
            job = Job(key)
            self._running[key] = job

        def run() -> None:
            try:
                result = work(job)
            except BaseException as exc:
                with self._lock:
                    self._running.pop(key, None)
                job.fail(exc)
            else:
                with self._lock:
                    self._running.pop(key, None)
                job.finish(result)

        threading.Thread(target=run, name=f"job {key}", daemon=True).start()
        return job, False

    def running(self) -> list[Job]:
        with self._lock:
            return list(self._running.values())

    def wait_all(self, timeout: float) -> None:
        for job in self.running():
            job.wait(timeout)
