"""``klink local-cloud``: the daemon that owns the local cloud, and how callers find it.

The daemon serves a small JSON API on 127.0.0.1 (a free port; the URL, pid and process start
time go to ``KLINK_HOME/local/daemon.json``): ``POST /call/<method>`` runs one provider method
(arguments and result encoded by ``codec.py``), ``GET /instances/<id>/log`` returns an
instance's log, ``GET /traffic/<target group>`` its members' weights, health and HAProxy
servers as plain JSON, ``GET /metrics`` HAProxy's exporter with a ``group`` label on every
server's series (``metrics.py``), ``GET /health`` answers when it is up. ``POST
/call/prometheus`` starts the cloud's own Prometheus on first use (it scrapes ``/metrics``;
``KLINK_LOCAL_SCRAPE_SECONDS``, default 1). One daemon per ``KLINK_HOME`` (a lock file). It
runs in its own session, so it outlives whoever started it; its instances, HAProxy and
Prometheus run in sessions of their own, so they outlive the daemon, and a restarted daemon
adopts them.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from klink.errors import InvalidInput, KlinkError, NotFound, ProviderError
from klink.providers import base
from klink.providers.local import codec, metrics, processes, reconcile
from klink.providers.local.cloud import LocalCloud

log = logging.getLogger("klink.local")

# The provider methods the daemon runs: the interface's, and its optional ``prometheus``.
METHODS = (frozenset(base.Provider.__abstractmethods__) - {"from_environment"}) | {"prometheus"}
INSTALL_HINT = "haproxy is not installed: run `apt-get install haproxy` (as root)"
SCRAPE_ENV = "KLINK_LOCAL_SCRAPE_SECONDS"


class DaemonError(KlinkError):
    code = "local_cloud"


def info_path(home: Path) -> Path:
    return Path(home) / "local" / "daemon.json"


def running(home: Path) -> dict[str, Any] | None:
    """The running daemon's ``{"url", "pid", "started"}``, or None."""
    try:
        info = json.loads(info_path(home).read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(info, dict) or not processes.alive(info.get("pid"), info.get("started")):
        return None
    return info


def ensure(home: Path, timeout: float = 20.0, sleep: Callable[[float], None] = time.sleep) -> str:
    """The URL of this home's daemon, starting one detached (its own session) if none runs."""
    info = running(home)
    if info is not None:
        return str(info["url"])
    if shutil.which("haproxy") is None:
        raise DaemonError(INSTALL_HINT, field="haproxy")
    scrape_interval(os.environ)  # a bad value is said here, not after a start that failed
    start_detached(home)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = running(home)
        if info is not None:
            return str(info["url"])
        sleep(0.05)
    raise DaemonError(
        f"local cloud did not start; see {Path(home) / 'local' / 'daemon.log'}", field="provider"
    )


def start_detached(home: Path) -> int:
    local = Path(home) / "local"
    local.mkdir(parents=True, exist_ok=True)
    with open(local / "daemon.log", "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "klink.providers.local.daemon", "--home", str(home)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    return process.pid


class _Handler(BaseHTTPRequestHandler):
    cloud: LocalCloud
    protocol_version = "HTTP/1.1"
    # Keep-alive with headers and body in separate writes: without this, Nagle + delayed ACK
    # add ~40 ms to every call.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode())

    def _error(self, exc: KlinkError) -> None:
        self._json(exc.status, exc.to_json())

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        if parts == ["health"]:
            self._json(200, {"ok": True, "pid": os.getpid()})
        elif parts == ["metrics"]:
            try:
                text = self.cloud.metrics_text()
            except KlinkError as exc:
                self._error(exc)
                return
            self._send(200, text.encode("utf-8", "surrogateescape"), metrics.CONTENT_TYPE)
        elif len(parts) == 2 and parts[0] == "traffic":
            # Plain JSON (not the codec's) for people and scripts: which servers are whose.
            try:
                state = self.cloud.traffic(parts[1])
            except KlinkError as exc:
                self._error(exc)
                return
            self._json(200, dataclasses.asdict(state))
        elif len(parts) == 3 and parts[0] == "instances" and parts[2] == "log":
            raw = (parse_qs(url.query).get("tail") or ["200"])[0]
            if not raw.isdigit():
                self._error(InvalidInput("tail must be a number of lines", field="tail"))
                return
            self._send(200, self.cloud.instance_log(parts[1], int(raw)).encode(), "text/plain")
        else:
            self._error(NotFound(f"no route {url.path}"))

    def do_POST(self) -> None:
        parts = [p for p in urlsplit(self.path).path.split("/") if p]
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if len(parts) != 2 or parts[0] != "call" or parts[1] not in METHODS:
                raise NotFound(f"no method {'/'.join(parts[1:])}", field="method")
            args = codec.decode(body.get("args", []))
            kwargs = codec.decode(body.get("kwargs", {}))
            result = getattr(self.cloud, parts[1])(*args, **kwargs)
            self._json(200, {"result": codec.encode(result)})
        except KlinkError as exc:
            self._error(exc)
        except (ValueError, TypeError) as exc:
            self._json(400, {"error": {"code": "invalid", "message": str(exc), "field": "body"}})
        except Exception as exc:
            log.exception("local cloud call failed")
            self._error(ProviderError(f"local cloud: {exc}"))


def scrape_interval(env: Mapping[str, str]) -> float:
    """``KLINK_LOCAL_SCRAPE_SECONDS``: how often the cloud's Prometheus scrapes (default 1)."""
    raw = env.get(SCRAPE_ENV, "").strip()
    if not raw:
        return metrics.DEFAULT_SCRAPE_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0.1 <= seconds <= 300:
        raise DaemonError(
            f"{SCRAPE_ENV}={raw!r}: must be a number of seconds from 0.1 to 300", field=SCRAPE_ENV
        )
    return seconds


def serve(
    home: Path,
    *,
    port: int = 0,
    haproxy_binary: str = "haproxy",
    scrape_seconds: float = metrics.DEFAULT_SCRAPE_SECONDS,
) -> None:
    """Run the daemon in the foreground until SIGTERM/SIGINT (instances keep running)."""
    if shutil.which(haproxy_binary) is None:
        raise DaemonError(INSTALL_HINT, field="haproxy")
    local = Path(home) / "local"
    local.mkdir(parents=True, exist_ok=True)
    lock = open(local / "daemon.lock", "a")  # noqa: SIM115 - held for the daemon's lifetime
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise DaemonError(f"a local cloud already runs for {home}", field="home") from None
    cloud = LocalCloud(Path(home), haproxy_binary=haproxy_binary, scrape_interval=scrape_seconds)
    cloud.request_log.start()  # before HAProxy is (re)configured to log to it
    reconcile.adopt(cloud)
    stop = threading.Event()
    handler = type("Handler", (_Handler,), {"cloud": cloud})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    loop = threading.Thread(target=reconcile.run, args=(cloud, stop), name="reconcile")
    loop.start()

    def _quit(_signum: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, _quit)
    signal.signal(signal.SIGINT, _quit)
    pid = os.getpid()
    info = {
        "url": f"http://127.0.0.1:{server.server_address[1]}",
        "pid": pid,
        "started": processes.start_time(pid),
    }
    cloud.url = str(info["url"])
    # A Prometheus left by the previous daemon scrapes this one from now on (in the background:
    # a slow reload must not hold the cloud's API back).
    threading.Thread(target=cloud.adopt_prometheus, name="adopt-prometheus", daemon=True).start()
    temp = info_path(home).with_suffix(".new")
    temp.write_text(json.dumps(info) + "\n")
    os.replace(temp, info_path(home))
    log.info("local cloud for %s listening on %s", home, info["url"])
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        stop.set()
        cloud.wake.set()
        loop.join(timeout=10)
        server.server_close()
        cloud.pool.shutdown(wait=True)
        cloud.request_log.stop()
        cloud.save()
        if running(home) == info:
            info_path(home).unlink(missing_ok=True)
        lock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="klink local-cloud")
    parser.add_argument("--home", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        serve(Path(args.home), port=args.port, scrape_seconds=scrape_interval(os.environ))
    except KlinkError as exc:
        sys.stderr.write(f"klink: {exc.message}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
