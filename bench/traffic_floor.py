"""The floor of a deploy, and the cost of one traffic shift on the local provider.

**Floor** (what issue 13's deploy benchmark compares Klink against): N instances (1, 4, 16) of
``examples/hello`` version 1.0 serve behind a real HAProxy; a bare script, with no Klink in
the path (plain ``subprocess`` and a hand-written HAProxy config; Klink only lends its loopback
address block so that other clouds on the machine are never hit), then starts N processes of
version 2.0, waits until HAProxy's own checks see all of them UP (``inter 1s rise 2 fall 2``,
the checks Klink's local target groups use), moves the weights in one runtime-API round trip
and waits until every answer comes from 2.0. Timed from the first process start to the first
of 3 x N consecutive answers from 2.0 (``healthy`` is the part until the checks pass).

**Shift** (the undo-while-warm goal, 0.25 s at every size): two groups of N ``hello``
instances on a real local cloud (daemon + HAProxy), both attached; under load (4 keep-alive
clients through HAProxy), ``set_traffic`` moves all traffic from one group to the other and
back. ``call`` is the time of the ``set_traffic`` call (client → daemon → HAProxy);
``switched`` is from the call's start until the last request *sent* after it that was answered
by the old group, or the end of the call if none was (every request sent after that is
answered by the new group). Failed requests are counted across all shifts.

Rounds interleave the sizes so machine noise hits all alike; medians are printed and written to
``bench/results/traffic_floor.json``.

    .venv/bin/python bench/traffic_floor.py [--rounds 3] [--shifts 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' helpers build images and groups for the shift part
RESULTS = ROOT / "bench" / "results" / "traffic_floor.json"
HELLO = ROOT / "examples" / "hello" / "hello.py"
SIZES = (1, 4, 16)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(host: str, port: int, path: str = "/healthcheck", timeout: float = 2.0) -> str | None:
    """The version answering, or None."""
    try:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        connection.close()
    except OSError:
        return None
    return str(json.loads(body)["version"]) if response.status == 200 else None


# The floor: processes and a hand-written HAProxy config ------------------------------------
def start_hello(work: Path, ip: str, port: int, version: str) -> subprocess.Popen[bytes]:
    root = work / f"{ip}-{version}-{time.monotonic_ns()}"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hello.properties").write_text(f"service.port={port}\n")
    # A copy without examples/hello/VERSION beside it: the version comes from KLINK_VERSION.
    shutil.copy(HELLO, root / "hello.py")
    env = {
        **os.environ,
        "KLINK_ROOT": str(root),
        "KLINK_INSTANCE_IP": ip,
        "KLINK_VERSION": version,
    }
    return subprocess.Popen(
        [sys.executable, str(root / "hello.py")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def admin(sock_path: Path, line: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(sock_path))
        sock.sendall(line.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def server_states(sock_path: Path) -> dict[str, str]:
    """Server → "UP" (checked and passing), "DOWN" (checked and failing) or "?" (anything
    else: HAProxy presumes servers up before their first checks, and counts rises)."""
    text = admin(sock_path, "show stat").lstrip("# ")
    header, *rows = text.splitlines()
    names = header.split(",")
    status, check, server = (names.index(k) for k in ("status", "check_status", "svname"))
    out = {}
    for row in rows:
        fields = row.split(",")
        if len(fields) < len(names) or fields[server] in ("FRONTEND", "BACKEND"):
            continue
        state, checked = fields[status], fields[check]
        if state == "UP" and checked.startswith("L7OK"):
            out[fields[server]] = "UP"
        elif state == "DOWN":
            out[fields[server]] = "DOWN"
        else:
            out[fields[server]] = "?"
    return out


def all_in(sock_path: Path, names: set[str], state: str) -> bool:
    states = server_states(sock_path)
    return all(states.get(n) == state for n in names)


def floor_round(work: Path, ips: list[str], size: int) -> tuple[float, float]:
    """(healthy, total) seconds of one bare deploy of ``size`` instances."""
    port, frontend = free_port(), free_port()
    old_ips, new_ips = ips[:size], ips[size : 2 * size]
    folder = work / f"haproxy-{size}-{time.monotonic_ns()}"
    folder.mkdir(parents=True)
    sock_path = folder / "admin.sock"
    check = "check inter 1000 rise 2 fall 2"
    lines = [
        "global",
        f"    stats socket {sock_path} mode 600 level admin",
        "defaults",
        "    mode http",
        "    option http-keep-alive",
        "    timeout connect 2s",
        "    timeout client 30s",
        "    timeout server 30s",
        "frontend fe",
        f"    bind 127.0.0.1:{frontend}",
        "    default_backend be",
        "backend be",
        "    balance roundrobin",
        "    option httpchk GET /healthcheck",
        *(f"    server old{i} {ip}:{port} {check} weight 1" for i, ip in enumerate(old_ips)),
        *(f"    server new{i} {ip}:{port} {check} weight 0" for i, ip in enumerate(new_ips)),
    ]
    (folder / "haproxy.cfg").write_text("\n".join(lines) + "\n")
    processes = [start_hello(work, ip, port, "1.0") for ip in old_ips]
    haproxy = subprocess.Popen(
        ["haproxy", "-q", "-f", str(folder / "haproxy.cfg")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        old_names = {f"old{i}" for i in range(size)}
        new_names = {f"new{i}" for i in range(size)}
        # Ready to start: the old servers checked UP, the new ones checked DOWN (not started).
        wait(lambda: sock_path.exists() and all_in(sock_path, old_names, "UP"), 30)
        wait(lambda: all_in(sock_path, new_names, "DOWN"), 30)
        start = time.monotonic()
        processes += [start_hello(work, ip, port, "2.0") for ip in new_ips]
        wait(lambda: all_in(sock_path, new_names, "UP"), 60, 0.02)
        healthy = time.monotonic() - start
        admin(
            sock_path,
            "; ".join(  # new weights up first: never a moment with every weight at 0
                [f"set weight be/{n} 1" for n in sorted(new_names)]
                + [f"set weight be/{n} 0" for n in sorted(old_names)]
            ),
        )
        streak, deadline = 0, time.monotonic() + 30
        while streak < 3 * size:
            streak = streak + 1 if get("127.0.0.1", frontend) == "2.0" else 0
            if time.monotonic() > deadline:
                raise RuntimeError("the new version never answered alone")
        return healthy, time.monotonic() - start
    finally:
        haproxy.terminate()
        for process in processes:
            process.terminate()
        for process in [haproxy, *processes]:
            process.wait(timeout=10)


def wait(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(interval)


# The shift: Klink's local provider --------------------------------------------------------
class Prober:
    """Keep-alive clients through HAProxy recording (sent at, version) of every answer."""

    def __init__(self, frontend: int, threads: int = 4) -> None:
        self.frontend = frontend
        self.answers: list[tuple[float, str]] = []
        self.failed = 0
        self.errors: Counter[str] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.frontend, timeout=10)
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                connection.request("GET", "/healthcheck")
                response = connection.getresponse()
                body = response.read()
                version = json.loads(body)["version"] if response.status == 200 else None
                error = f"HTTP {response.status}"
            except (OSError, http.client.HTTPException, ValueError) as exc:
                version, error = None, type(exc).__name__
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.frontend, timeout=10)
            with self._lock:
                if version is None:
                    self.failed += 1
                    self.errors[error] += 1
                else:
                    self.answers.append((sent, version))

    @contextmanager
    def running(self) -> Iterator[Prober]:
        for thread in self._threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            for thread in self._threads:
                thread.join(timeout=15)


@dataclass
class Shifts:
    calls: list[float] = field(default_factory=list)
    switched: list[float] = field(default_factory=list)
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)


def shift_round(provider: object, home: Path, size: int, shifts: int, tag: str) -> Shifts:
    from tests.local.conftest import group_with, in_service, make_image

    from klink.providers import base
    from klink.providers.local.provider import LocalProvider

    assert isinstance(provider, LocalProvider)
    port, frontend = free_port(), free_port()
    tg = f"b{size}{tag}"
    provider.ensure_target_group(
        base.TargetGroupSpec(
            name=tg,
            port=port,
            health_check_interval_seconds=1,
            deregistration_delay_seconds=2,
            frontend_port=frontend,
        )
    )
    groups = {"1.0": f"{tg}-dev-v001", "2.0": f"{tg}-dev-v002"}
    for version, name in groups.items():
        image = make_image(home, version, home / f"stage-{tg}")
        group_with(provider, image, name, size, port=port)
    wait(lambda: all(in_service(provider, g, size) for g in groups.values()), 120)
    for name in groups.values():
        provider.attach_traffic(tg, name)
    wait(lambda: all(g.healthy == size for g in provider.traffic(tg).groups), 60)
    provider.set_traffic(tg, {groups["1.0"]: 100, groups["2.0"]: 0})
    out = Shifts()
    with Prober(frontend).running() as prober:
        time.sleep(0.5)
        for i in range(shifts):
            new, old = ("2.0", "1.0") if i % 2 == 0 else ("1.0", "2.0")
            started = time.monotonic()
            provider.set_traffic(tg, {groups[new]: 100, groups[old]: 0})
            done = time.monotonic()
            time.sleep(0.5)  # answers to judge the switch by
            with prober._lock:
                late = [t for t, v in prober.answers if t >= started and v == old]
            out.calls.append(done - started)
            out.switched.append(max([done, *late]) - started)
    for name in groups.values():
        provider.delete_group(name)
    wait(lambda: not any(provider.group_exists(g) for g in groups.values()), 60)
    provider.delete_target_group(tg)
    out.failed, out.errors = prober.failed, prober.errors
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shifts", type=int, default=10)
    args = parser.parse_args()
    from klink.providers.local import addresses, control, daemon
    from klink.providers.local.provider import LocalProvider

    home = Path(tempfile.mkdtemp(prefix="klink-bench-"))
    floors: dict[int, list[tuple[float, float]]] = {n: [] for n in SIZES}
    shifts: dict[int, list[Shifts]] = {n: [] for n in SIZES}
    try:
        block = addresses.claim(home / "floor")
        used: set[str] = set()
        ips = []
        for _ in range(2 * max(SIZES)):
            ips.append(block.allocate(used))
            used.add(ips[-1])
        provider = LocalProvider(home, daemon.ensure(home))
        for _round in range(args.rounds):
            for size in SIZES:
                floors[size].append(floor_round(home / "floor", ips, size))
                shifts[size].append(shift_round(provider, home, size, args.shifts, f"r{_round}"))
        provider.close()
        block.release()
    finally:
        control.stop_all(home, grace=2.0)
        shutil.rmtree(home, ignore_errors=True)
    rows = []
    for size in SIZES:
        healthy = statistics.median(h for h, _ in floors[size])
        total = statistics.median(t for _, t in floors[size])
        call = statistics.median(c for r in shifts[size] for c in r.calls)
        switched = [s for r in shifts[size] for s in r.switched]
        failed = sum(r.failed for r in shifts[size])
        errors = sum((r.errors for r in shifts[size]), Counter())
        rows.append(
            {
                "instances": size,
                "floor_healthy_s": round(healthy, 3),
                "floor_total_s": round(total, 3),
                "shift_call_s": round(call, 4),
                "shift_switched_median_s": round(statistics.median(switched), 4),
                "shift_switched_max_s": round(max(switched), 4),
                "shifts": len(switched),
                "failed_requests": failed,
                "errors": dict(errors),
            }
        )
    print(
        f"{'instances':>9} {'floor healthy':>14} {'floor total':>12} "
        f"{'shift call':>11} {'switched p50':>13} {'max':>7} {'failed':>7}"
    )
    for row in rows:
        print(
            f"{row['instances']:>9} {row['floor_healthy_s']:>13.3f}s {row['floor_total_s']:>11.3f}s"
            f" {row['shift_call_s']:>10.4f}s {row['shift_switched_median_s']:>12.4f}s"
            f" {row['shift_switched_max_s']:>6.4f}s {row['failed_requests']:>7}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "traffic_floor",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "rounds": args.rounds,
                "shifts_per_round": args.shifts,
                "measure": "floor: bare script, first new process start until 3xN consecutive "
                "answers from the new version (healthy: until HAProxy sees all new servers UP); "
                "shift: set_traffic call time, and call start until the last request sent "
                "after it that the old group answered (or the call's end)",
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
