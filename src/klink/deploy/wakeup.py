"""Idle engines wake when work becomes due, instead of polling fast.

An idle engine thread sleeps until the next deployment it could claim is due (the earliest
``not_before`` of an active deployment nobody holds: a wait's next look, known in advance), or
at most ``idle`` seconds. Work that nobody could know in advance (a new deployment, a resume,
a retry, an undo) is announced: on PostgreSQL the transaction that makes it due also runs
``NOTIFY klink_deploy_due`` (delivered at commit), and one ``LISTEN`` connection per process
wakes every idle engine thread at once; they race for it with ``SKIP LOCKED``. On SQLite (one
machine) there is no announcement and the idle bound applies. A lost listener reconnects; until
then the idle bound still holds, so a missed notification delays work, never loses it.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

CHANNEL = "klink_deploy_due"


def announce(conn: Connection) -> None:
    """Wake the idle engines of every process once this transaction commits (PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"NOTIFY {CHANNEL}")


class Wakeup:
    """This process's listener: ``wait(seconds)`` returns early once work was announced."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.event = threading.Event()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        if engine.dialect.name == "postgresql":
            self.thread = threading.Thread(target=self._listen, name="deploy-wakeup", daemon=True)
            self.thread.start()

    def _listen(self) -> None:
        while not self.stopped.is_set():
            try:
                with self.engine.connect() as conn:
                    raw = conn.connection.driver_connection
                    raw.autocommit = True  # type: ignore[union-attr]
                    raw.execute(f"LISTEN {CHANNEL}")  # type: ignore[union-attr]
                    while not self.stopped.is_set():
                        for _ in raw.notifies(timeout=1.0):  # type: ignore[union-attr]
                            self.event.set()
            except Exception as exc:  # the database went away: listen again in a moment
                log.debug("deploy wake-up listener: %s", exc)
                self.stopped.wait(1.0)

    def wait(self, seconds: float) -> None:
        if self.event.wait(seconds):
            self.event.clear()

    def close(self) -> None:
        self.stopped.set()


def idle_seconds(due: datetime | None, now: datetime, idle: float) -> float:
    """How long an idle engine sleeps: until ``due`` (the next claimable), at most ``idle``;
    a little when it is due already yet was not claimed (another engine is taking it, or its
    row is locked by a writer), so that idle threads never spin."""
    if due is None:
        return idle
    left = (due - now).total_seconds()
    return min(idle, left) if left > 0 else min(idle, 0.05)
