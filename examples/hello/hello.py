"""A tiny HTTP service for trying Klink: stdlib only.

Binds ``$KLINK_INSTANCE_IP`` (default 127.0.0.1) on ``service.port`` from
``$KLINK_ROOT/etc/hello.properties`` (``key=value`` lines; default 8080).
``GET /healthcheck`` answers 200 with ``{"app", "version", "properties"}``; ``GET /`` answers
a line of text with the version; ``GET /sleep?ms=N`` answers after N ms (at most 10 s).
HTTP/1.1 keep-alive, Nagle off; exits cleanly on SIGTERM.
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
