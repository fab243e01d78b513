"""The load generator counts what it sent, what failed and which versions answered."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from klink.cli.loadgen import LoadGenerator


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    version = "1.0"
    fail_every = 0
    count = 0

    def do_GET(self) -> None:
        Handler.count += 1
        status = 500 if Handler.fail_every and Handler.count % Handler.fail_every == 0 else 200
        body = json.dumps({"version": Handler.version}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_counts_requests_failures_and_versions(server: ThreadingHTTPServer) -> None:
    Handler.version, Handler.fail_every, Handler.count = "1.0", 0, 0
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    with LoadGenerator(url, threads=2) as load:
        time.sleep(0.3)
        Handler.version = "2.0"
        time.sleep(0.3)
        Handler.fail_every = 5
        time.sleep(0.2)
    result = load.result
    assert result is not None
    assert result.sent == Handler.count
    assert result.sent > 20
    assert result.failed > 0
    assert result.errors == {"HTTP 500": result.failed}
    assert sorted(result.versions) == ["1.0", "2.0"]
    assert result.to_json()["versions_seen"] == ["1.0", "2.0"]


def test_connection_errors_count_as_failures() -> None:
    with LoadGenerator("http://127.0.0.1:9/", threads=1, pause=0.01) as load:
        time.sleep(0.1)
    assert load.result is not None
    assert load.result.sent == load.result.failed > 0


def test_refuses_non_loopback_targets() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LoadGenerator("http://10.0.0.1:80/")
