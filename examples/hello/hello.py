"""A tiny HTTP service for trying Klink: stdlib only.

Binds ``$KLINK_INSTANCE_IP`` (default 127.0.0.1) on ``service.port`` from
``$KLINK_ROOT/etc/hello.properties`` (``key=value`` lines; default 8080).
``GET /healthcheck`` answers 200 with ``{"app", "version", "properties"}``; ``GET /`` answers
a line of text with the version; ``GET /sleep?ms=N`` answers after N ms (at most 10 s).
HTTP/1.1 keep-alive, Nagle off; exits cleanly on SIGTERM.

It can be told to misbehave, to try a canary on it, by two properties (written by Klink's
cloud-init from ``application-properties.json``): ``fault.errorRate`` (0 to 1) answers that
share of requests with 500, spread evenly (exactly one in twenty at 0.05: a deterministic
share, so a demo or test sees the rate it set), and ``fault.latencyMs`` adds that many
milliseconds to every answer. ``/healthcheck`` never misbehaves: a bad version passes the
health gate and must be caught by the canary's analysis, as a real one would be.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent


def read_properties(path: Path) -> dict[str, str]:
    props: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                props[key.strip()] = value.strip()
    return props


def read_version() -> str:
    version_file = HERE / "VERSION"
    if version_file.is_file():
        return version_file.read_text().strip()
    return os.environ.get("KLINK_VERSION", "0.0.0")


ROOT = Path(os.environ.get("KLINK_ROOT", "/"))
PROPERTIES = read_properties(ROOT / "etc" / "hello.properties")
VERSION = read_version()
APP = os.environ.get("KLINK_APP", "hello")


def fraction(props: dict[str, str], key: str) -> float:
    value = float(props.get(key, "0") or 0)
    if not 0 <= value <= 1:
        raise ValueError(f"{key} must be between 0 and 1, not {value}")
    return value


def milliseconds(props: dict[str, str], key: str) -> float:
    value = float(props.get(key, "0") or 0)
    if not 0 <= value <= 60000:
        raise ValueError(f"{key} must be between 0 and 60000, not {value}")
    return value


class Faults:
    """The share of requests answered 500 and the added delay (see the module docstring)."""

    def __init__(self, error_rate: float = 0.0, latency_ms: float = 0.0) -> None:
        self.error_rate = error_rate
        self.latency = latency_ms / 1000
        self._owed = 0.0
        self._lock = threading.Lock()

    @classmethod
    def of(cls, props: dict[str, str]) -> Faults:
        return cls(fraction(props, "fault.errorRate"), milliseconds(props, "fault.latencyMs"))

    def fail_this_one(self) -> bool:
        # Error diffusion: owe error_rate per request, pay one 500 per whole unit owed.
        with self._lock:
            self._owed += self.error_rate
            if self._owed >= 1 - 1e-9:
                self._owed -= 1
                return True
            return False


FAULTS = Faults()  # set from the properties in main()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/healthcheck":
            body = {"app": APP, "version": VERSION, "properties": PROPERTIES}
            self._reply(200, json.dumps(body).encode(), "application/json")
            return
        if FAULTS.latency:
            time.sleep(FAULTS.latency)
        if FAULTS.fail_this_one():
            self._reply(500, f"failing on purpose, {VERSION}\n".encode(), "text/plain")
        elif self.path.startswith("/sleep?ms="):
            # A slow request, to show that draining lets requests in flight finish.
            time.sleep(min(int(self.path.partition("=")[2] or 0), 10000) / 1000)
            self._reply(200, f"slept, {VERSION}\n".encode(), "text/plain")
        elif self.path == "/":
            self._reply(200, f"hello from {APP} {VERSION}\n".encode(), "text/plain")
        else:
            self._reply(404, b"not found\n", "text/plain")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # http.server's listen backlog is 5: a burst of new connections (a load balancer opening
    # one per client) overflows it, and each dropped SYN costs a 1 s retransmission.
    request_queue_size = 128


def main() -> int:
    global FAULTS
    try:
        FAULTS = Faults.of(PROPERTIES)
    except ValueError as exc:
        print(f"hello: bad property: {exc}", file=sys.stderr)
        return 2
    host = os.environ.get("KLINK_INSTANCE_IP", "127.0.0.1")
    port = int(PROPERTIES.get("service.port", "8080"))
    server = Server((host, port), Handler)

    def stop(_signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"hello {VERSION} listening on {host}:{port}", flush=True)
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
