"""Processes on this machine: start in their own session, identify by pid + start time, stop.

A pid alone is not an identity (pids are reused), so every process Klink starts is recorded as
(pid, start time in clock ticks from ``/proc/<pid>/stat``) and only that pair is ever signalled.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path


def start_time(pid: int) -> int | None:
    """The process's start time (field 22 of /proc/<pid>/stat), None if it is gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def alive(pid: int | None, started: int | None) -> bool:
    return pid is not None and started is not None and start_time(pid) == started


def signal_group(pid: int, started: int, sig: signal.Signals) -> None:
    """Signal the session/process group of a process we started, if it is still that process."""
    if not alive(pid, started):
        return
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)


def stop(
    pid: int,
    started: int,
    *,
    grace: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """SIGTERM, then SIGKILL once ``grace`` seconds have passed; returns when it is gone."""
    signal_group(pid, started, signal.SIGTERM)
    deadline = clock() + grace
    while alive(pid, started):
        if clock() >= deadline:
            signal_group(pid, started, signal.SIGKILL)
            deadline = clock() + 5.0
        sleep(0.02)
