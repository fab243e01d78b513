"""The local load balancer: one HAProxy process, its config rendered from the daemon's state.

A target group is a frontend on ``127.0.0.1:<frontend_port>`` and a backend with HTTP health
checks on its health path. The master config is rendered from the target groups and their
registered servers; adding a target group reloads HAProxy seamlessly (``-sf`` with the
listening sockets passed over ``-x``, the servers' health kept through ``server-state-file``).
Registration never reloads. Each backend has a fixed number of server *slots* in the config
(``s0``, ``s1``, …; free ones ``disabled``), and registering an instance points a free slot at
its address through the runtime API (``set server … addr``, ``set server … state ready``,
then ``health down`` so that it takes requests only once its own checks pass);
draining and freeing are ``state drain`` and ``state maint``. Slots rather than ``add server``:
HAProxy 2.6 does not reuse idle connections to servers added at run time, which costs a new
connection per request (about 500 req/s against 3,500 with slots, same machine). A backend that
runs out of slots gets twice as many through one graceful reload. Target health is read from
``show stat`` and mapped to ELBv2 states.

Weights: every server line carries its weight (0..256) and, in its comment, the instance and
the group it belongs to (``# i-… group=hello-dev-v003``; ``group=-`` for direct registrations),
so a restarted HAProxy comes back with the weights it had. At run time weights change through
``set weight`` only, all of a shift in one runtime-API round trip (``batch``: commands joined
with ``;``), never a reload; health checks keep running on weight-0 servers.

HAProxy's built-in Prometheus exporter serves every frontend, backend and server counter at
``http://127.0.0.1:<metrics port>/metrics`` (frontend ``klink_metrics``), for the canary's
metrics: the port is chosen free once and kept in ``metrics.port`` beside the config, so that it
survives reloads and restarts. Its server series name the slot only (``server="s3"``); the
daemon serves them again with each slot's current group added (``metrics.py``). Each target
group's frontend also logs every request (backend, slot, response time) as one datagram to
``log.sock`` beside the config, where the daemon times responses by group (``latency.py``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import socket
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from klink.errors import ProviderError
from klink.providers.local import processes
from klink.providers.local.latency import LOG_FORMAT

MAX_WEIGHT = 256  # HAProxy's largest server weight
LOG_LENGTH = 512  # bytes of a request's log line, far more than ``LOG_FORMAT`` needs


class Server(NamedTuple):
    address: str
    draining: bool
    slot: int
    weight: int = 1
    group: str | None = None  # the deployment group it serves for; None for direct targets
    instance: str | None = None  # the instance id, when the server's key is not it


@dataclass(frozen=True)
class Backend:
    name: str
    frontend_port: int
    port: int
    health_path: str
    interval_ms: int
    rise: int
    fall: int
    # target key (the instance id, or ``{instance}@{group}`` for a group member) -> server
    servers: Mapping[str, Server]
    slots: int = 32


def slot_name(slot: int) -> str:
    return f"s{slot}"


def proxy_name(backend_name: str) -> str:
    """The backend's name in HAProxy: the stats' ``pxname``, the exporter's ``proxy`` label."""
    return _ident(backend_name)


def server_id(backend_name: str, slot: int) -> str:
    """``backend/server`` as the runtime API and the stats (``pxname``/``svname``) name it."""
    return f"{_ident(backend_name)}/{slot_name(slot)}"


# What the runtime API answers when it refuses a command (successful ``set`` commands print
# nothing, or "IP changed from …" for ``set server … addr``).
_REFUSALS = ("No such", "Require", "nvalid", "can only be", "Unknown command", "not found")


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def server_line(backend: Backend, address: str) -> str:
    return (
        f"{address}:{backend.port} check inter {backend.interval_ms}"
        f" rise {backend.rise} fall {backend.fall}"
    )


# Where a free slot points: nothing listens there, and a disabled server is never checked.
FREE_ADDRESS = "127.0.0.1"


def render(
    backends: Iterable[Backend],
    socket_path: Path,
    state_path: Path,
    metrics_port: int | None = None,
    log_path: Path | None = None,
) -> str:
    lines = [
        "global",
        f"    stats socket {socket_path} mode 600 level admin expose-fd listeners",
        f"    server-state-file {state_path}",
        "    maxconn 4096",
    ]
    if log_path is not None:
        # One datagram a request, message only (no syslog header): ``latency.LOG_FORMAT``.
        lines.append(f"    log {log_path} len {LOG_LENGTH} format raw local0 info")
    lines += [
        "",
        "defaults",
        "    mode http",
        "    option http-keep-alive",
        "    load-server-state-from-file global",
        "    timeout connect 2s",
        "    timeout client 30s",
        "    timeout server 30s",
        "    timeout http-keep-alive 10s",
        "    retries 2",
        "    option redispatch",
        "",
    ]
    if metrics_port is not None:
        lines += [
            "frontend klink_metrics",
            f"    bind 127.0.0.1:{metrics_port}",
            "    http-request use-service prometheus-exporter if { path /metrics }",
            "    http-request return status 404",
            "",
        ]
    for backend in sorted(backends, key=lambda b: b.name):
        name = _ident(backend.name)
        lines += [
            f"frontend fe_{name}",
            f"    bind 127.0.0.1:{backend.frontend_port}",
            f"    default_backend {name}",
        ]
        if log_path is not None:
            lines += ["    log global", f'    log-format "{LOG_FORMAT}"']
        lines += [
            "",
            f"backend {name}",
            "    balance roundrobin",
            f"    option httpchk GET {backend.health_path}",
            "    http-check expect status 200",
        ]
        by_slot = {server.slot: (key, server) for key, server in backend.servers.items()}
        for slot in range(max(backend.slots, max(by_slot, default=-1) + 1)):
            if slot in by_slot:
                key, server = by_slot[slot]
                weight = 0 if server.draining else server.weight
                lines.append(
                    f"    server {slot_name(slot)} {server_line(backend, server.address)}"
                    f" weight {weight}  # {server.instance or key} group={server.group or '-'}"
                )
            else:
                lines.append(
                    f"    server {slot_name(slot)} {server_line(backend, FREE_ADDRESS)} disabled"
                )
        lines.append("")
    return "\n".join(lines) + "\n"


class HAProxy:
    """One HAProxy process under ``folder`` (config, pid file, admin socket, state file)."""

    def __init__(self, folder: Path, binary: str = "haproxy") -> None:
        self.folder = folder
        self.binary = binary
        self.config_path = folder / "haproxy.cfg"
        self.pid_path = folder / "haproxy.pid"
        self.socket_path = folder / "admin.sock"
        self.state_path = folder / "servers.state"
        self.metrics_port_path = folder / "metrics.port"
        self.log_path = folder / "log.sock"  # the request log, read by the daemon

    # Process ------------------------------------------------------------------------------
    def pid(self) -> tuple[int, int] | None:
        try:
            pid_text, _, start_text = self.pid_path.read_text().partition(" ")
            pid, started = int(pid_text), int(start_text)
        except (FileNotFoundError, ValueError):
            return None
        return (pid, started) if processes.alive(pid, started) else None

    def running(self) -> bool:
        return self.pid() is not None

    def metrics_port(self, *, rechoose_if_taken: bool = False) -> int:
        """The exporter's port: chosen free on first use, then the same for good.

        With ``rechoose_if_taken`` (HAProxy about to start afresh) a kept port that something
        else has taken meanwhile is given up for a free one: metrics must never keep the load
        balancer from starting.
        """
        with contextlib.suppress(FileNotFoundError, ValueError):
            port = int(self.metrics_port_path.read_text().strip())
            if not rechoose_if_taken:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    pass
                else:
                    return port
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        self.folder.mkdir(parents=True, exist_ok=True)
        self.metrics_port_path.write_text(f"{port}\n")
        return port

    def metrics_url(self) -> str:
        """Where Prometheus scrapes this HAProxy."""
        return f"http://127.0.0.1:{self.metrics_port()}/metrics"

    def apply(self, backends: Iterable[Backend]) -> None:
        """Write the config and start HAProxy, or reload it gracefully when it runs."""
        self.folder.mkdir(parents=True, exist_ok=True)
        current = self.pid()
        metrics_port = self.metrics_port(rechoose_if_taken=current is None)
        text = render(backends, self.socket_path, self.state_path, metrics_port, self.log_path)
        if current is not None and self.config_path.exists():
            if self.config_path.read_text() == text:
                return
            self._save_state()
        temp = self.config_path.with_suffix(".new")
        temp.write_text(text)
        check = subprocess.run(
            [self.binary, "-c", "-q", "-f", str(temp)], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise ProviderError(f"haproxy rejected its config: {check.stderr.strip()[-500:]}")
        temp.replace(self.config_path)
        if current is None:
            # A fresh start re-checks every server; an old saved state could be stale.
            self.state_path.unlink(missing_ok=True)
        argv = [self.binary, "-D", "-f", str(self.config_path), "-p", str(self.folder / "raw.pid")]
        if current is not None:
            argv += ["-x", str(self.socket_path), "-sf", str(current[0])]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ProviderError(f"haproxy failed to start: {result.stderr.strip()[-500:]}")
        pid = int((self.folder / "raw.pid").read_text().split()[0])
        started = processes.start_time(pid)
        self.pid_path.write_text(f"{pid} {started}\n")

    def stop(self) -> None:
        current = self.pid()
        if current is not None:
            processes.stop(*current, grace=5.0)
        self.pid_path.unlink(missing_ok=True)

    # Runtime API ---------------------------------------------------------------------------
    def command(self, line: str) -> str:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5.0)
                sock.connect(str(self.socket_path))
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise ProviderError(f"haproxy runtime API: {exc}") from None
        return b"".join(chunks).decode(errors="replace")

    def batch(self, lines: Sequence[str]) -> str:
        """Several commands in one round trip; ProviderError if HAProxy refused any of them."""
        if not lines:
            return ""
        out = self.command("; ".join(lines))
        if any(marker in out for marker in _REFUSALS):
            raise ProviderError(f"haproxy refused {lines[0]} (of {len(lines)}): {out.strip()}")
        return out

    def _save_state(self) -> None:
        with contextlib.suppress(ProviderError):
            self.state_path.write_text(self.command("show servers state"))

    def add_server(self, backend: Backend, slot: int, address: str, weight: int = 1) -> None:
        """Point slot ``slot`` at ``address`` with ``weight`` and put it in service (checks
        decide when), in one round trip."""
        server = server_id(backend.name, slot)
        self.batch(
            [
                f"set server {server} addr {address} port {backend.port}",
                # A slot drained before a reload was rendered with weight 0: set it again.
                f"set weight {server} {weight}",
                f"set server {server} state ready",
                f"enable health {server}",
                # A new address is down until its own checks pass (rise), and this must come
                # after ``state ready`` (leaving maintenance presumes a server up): without it
                # a slot keeps its last occupant's UP, or a fresh slot is presumed UP, and
                # gets requests and counts as healthy before anything answered there.
                f"set server {server} health down",
            ]
        )

    def set_weights(self, backend_name: str, weights: Mapping[int, int]) -> None:
        """Slot → weight for the servers of one backend, all in one round trip.

        HAProxy runs the commands one after another while its other threads serve requests,
        so the largest weights go first: lowering the old servers before raising the new ones
        would leave a moment with every weight at 0, and requests in it would get 503s."""
        ordered = sorted(weights.items(), key=lambda item: (-item[1], item[0]))
        self.batch([f"set weight {server_id(backend_name, s)} {w}" for s, w in ordered])

    def drain_server(self, backend_name: str, slot: int) -> None:
        self.command(f"set server {server_id(backend_name, slot)} state drain")

    def delete_server(self, backend_name: str, slot: int) -> None:
        """Free the slot: out of service at once, its sessions cut."""
        server = server_id(backend_name, slot)
        self.command(f"set server {server} state maint; shutdown sessions server {server}")

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        """``show stat`` rows of servers by (backend, server)."""
        text = self.command("show stat").lstrip("# ")
        rows: dict[tuple[str, str], dict[str, str]] = {}
        for row in csv.DictReader(io.StringIO(text)):
            if row.get("svname") in ("FRONTEND", "BACKEND", None):
                continue
            rows[(row["pxname"], row["svname"])] = row
        return rows

    def server_stats(self, backend_name: str) -> dict[str, dict[str, str]]:
        """``show stat`` rows of one backend by slot name (``s0``, …)."""
        be = _ident(backend_name)
        return {sv: row for (px, sv), row in self.stats().items() if px == be}


def target_state(row: Mapping[str, str] | None, draining: bool) -> str:
    """ELBv2 target state of one HAProxy server row."""
    if draining:
        return "draining"
    if row is None:
        return "initial"
    status = row.get("status", "")
    check = row.get("check_status", "")
    if status.startswith("MAINT") or check in ("", "INI") or check.startswith("* INI"):
        return "initial"
    if status.startswith("UP") or status == "NOLB":
        return "healthy"
    if status.startswith("DOWN") and row.get("lastchg") and check.startswith("L7OK"):
        return "initial"
    return "unhealthy"
