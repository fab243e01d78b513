"""``klink stop``: stop everything one ``KLINK_HOME`` started, in order, without the daemon's help.

Order: the server (``serve.pid``, only if that pid is a Klink process), the daemon (pid + start
time from ``daemon.json``), the local cloud's Prometheus (``prometheus/prometheus.pid``), then
the instances recorded in the state (each whole process group: SIGTERM, SIGKILL after the grace
period) and HAProxy. Nothing running is not an error.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from klink.providers.local import daemon, processes
from klink.providers.local.haproxy import HAProxy
from klink.providers.local.promserver import PrometheusServer
from klink.providers.local.state import State


def _wait_gone(
    pid: int, started: int, timeout: float, sleep: Callable[[float], None] = time.sleep
) -> bool:
    deadline = time.monotonic() + timeout
    while processes.alive(pid, started):
        if time.monotonic() >= deadline:
            return False
        sleep(0.05)
    return True


def _kill(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop_server(home: Path, timeout: float = 15.0) -> bool:
    path = Path(home) / "serve.pid"
    try:
        pid = int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return False
    started = processes.start_time(pid)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        cmdline = b""
    if started is None or b"klink" not in cmdline:
        path.unlink(missing_ok=True)
        return False
    _kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, started, timeout):
        _kill(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return True


def stop_daemon(home: Path, timeout: float = 15.0) -> bool:
    info = daemon.running(home)
    if info is None:
        return False
    pid, started = int(info["pid"]), int(info["started"])
    _kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, started, timeout):
        _kill(pid, signal.SIGKILL)
        _wait_gone(pid, started, 5.0)
    daemon.info_path(home).unlink(missing_ok=True)
    return True


def stop_instances(home: Path, grace: float = 10.0) -> int:
    local = Path(home) / "local"
    state = State.load(local / "state.json")
    running = [
        r for r in state.instances.values() if processes.alive(r.get("pid"), r.get("started"))
    ]
    for rec in running:
        processes.signal_group(rec["pid"], rec["started"], signal.SIGTERM)
    for rec in running:
        processes.stop(rec["pid"], rec["started"], grace=grace)
    return len(running)


def stop_haproxy(home: Path) -> bool:
    lb = HAProxy(Path(home) / "local" / "haproxy")
    was_running = lb.running()
    lb.stop()
    return was_running


def stop_prometheus(home: Path) -> bool:
    """The local cloud's own Prometheus (it outlives a daemon restart, not ``klink stop``)."""
    server = PrometheusServer(Path(home) / "local" / "prometheus")
    was_running = server.running()
    server.stop()
    return was_running


def stop_all(home: Path, grace: float = 10.0) -> list[str]:
    """Stop the server, the daemon, Prometheus, the instances and HAProxy; say what was
    stopped."""
    stopped = []
    if stop_server(home):
        stopped.append("server")
    if stop_daemon(home):
        stopped.append("local cloud daemon")
    if stop_prometheus(home):
        stopped.append("prometheus")
    count = stop_instances(home, grace)
    if count:
        stopped.append(f"{count} instance{'s' if count != 1 else ''}")
    if stop_haproxy(home):
        stopped.append("haproxy")
    return stopped
