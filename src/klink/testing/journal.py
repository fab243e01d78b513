"""ActionJournal: an engine observer that writes every action a worker runs to a file.

Multi-process tests need to count executions across ``klink worker`` processes: each worker
gets a journal (its own file, so no two processes append to one), one JSON line per event:
``start`` just before an action's cloud calls, ``end`` with its outcome, ``claim`` and
``lost`` (the engine gave a deployment up without acting). ``read_journals`` merges them.
Every line is written and flushed at once, so a worker killed with SIGKILL loses nothing it
had started.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from klink.deploy.observe import EngineObserver


class ActionJournal(EngineObserver):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _write(self, **event: Any) -> None:
        line = json.dumps({"t": time.time(), **event}) + "\n"
        with self._lock:
            os.write(self._fd, line.encode())

    def claimed(self, worker: str, deployment_id: str, latency: float, *, takeover: bool) -> None:
        self._write(
            event="claim", worker=worker, id=deployment_id, latency=latency, takeover=takeover
        )

    def action_started(
        self, worker: str, holder: str, deployment_id: str, seq: int, attempt: int
    ) -> None:
        self._write(
            event="start", worker=worker, holder=holder, id=deployment_id, seq=seq, attempt=attempt
        )

    def action_ended(
        self, worker: str, deployment_id: str, seq: int, attempt: int, outcome: str, seconds: float
    ) -> None:
        self._write(
            event="end",
            worker=worker,
            id=deployment_id,
            seq=seq,
            attempt=attempt,
            outcome=outcome,
            seconds=seconds,
        )

    def lease_lost(self, worker: str, deployment_id: str, reason: str) -> None:
        self._write(event="lost", worker=worker, id=deployment_id, reason=reason)


def read_journals(folder: Path) -> list[dict[str, Any]]:
    """Every event of every journal in ``folder``, in time order."""
    events: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a torn last line of a killed process
    return sorted(events, key=lambda e: float(e["t"]))
