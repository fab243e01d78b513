"""Cron schedules run by a background thread: base bakes and image cleanup.

``Schedule.run_due(now)`` runs every entry whose next time has come and computes its next
time with croniter; the thread only calls it and waits (``wait`` is injected, so tests drive
``run_due`` with their own clock and never sleep). An entry that raises is logged and keeps
its schedule.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from croniter import croniter

from klink.errors import SettingsError

log = logging.getLogger(__name__)

CLEANUP_SCHEDULE = "17 * * * *"  # hourly


def check_cron(expression: str, setting: str) -> str:
    if not croniter.is_valid(expression):
        raise SettingsError(
            f"{setting}={expression!r}: not a cron expression (e.g. '0 4 * * 1')", field=setting
        )
    return expression


def next_time(expression: str, after: datetime) -> datetime:
    result: datetime = croniter(expression, after).get_next(datetime)
    return result


@dataclass
class Entry:
    name: str
    expression: str
    run: Callable[[], None]
    due: datetime | None = None


@dataclass
class Schedule:
    clock: Callable[[], datetime]
    entries: list[Entry] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def add(self, name: str, expression: str, run: Callable[[], None]) -> None:
        self.entries.append(Entry(name, expression, run, next_time(expression, self.clock())))

    def run_due(self, now: datetime) -> list[str]:
        """Run the entries that are due at ``now``; return their names."""
        ran = []
        for entry in self.entries:
            if entry.due is not None and entry.due <= now:
                entry.due = next_time(entry.expression, now)
                ran.append(entry.name)
                try:
                    entry.run()
                except Exception:
                    log.exception("scheduled %s failed", entry.name)
        return ran

    def seconds_to_next(self, now: datetime) -> float:
        dues = [e.due for e in self.entries if e.due is not None]
        if not dues:
            return 3600.0
        return max(0.0, min((d - now).total_seconds() for d in dues))

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                self.run_due(self.clock())
                # Wake at least every minute, so that a changed clock is noticed.
                self._stop.wait(min(60.0, self.seconds_to_next(self.clock()) + 0.5))

        self._thread = threading.Thread(target=loop, name="bake schedule", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
