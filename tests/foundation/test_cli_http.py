"""The CLI's HTTP/1.1 client against a standard-library server on loopback: bodies by length,
chunked and until close, streamed lines as they arrive, chunked uploads, kept-alive reuse and a
server that closed the kept-alive connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from klink.cli.api import Api, CliError, Target
from klink.cli.http import query, quote, split_url

SEEN: list[tuple[str, str, bytes]] = []
PEERS: list[tuple[str, int]] = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding") == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        body = self._body()
        SEEN.append((self.command, self.path, body))
        PEERS.append(self.client_address)
        if self.path.startswith("/stream"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()
            for number in range(3):
                line = f'{{"log": "line {number}"}}\n'.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
                time.sleep(0.05)
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path.startswith("/close"):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until close")
            self.close_connection = True
            return
        data = (
            b'{"path": "%s", "got": %d}' % (self.path.encode(), len(body))
            if self.path != "/missing"
            else b'{"error": {"code": "not_found", "message": "no such thing", "field": "app"}}'
        )
        self.send_response(404 if self.path == "/missing" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[str]:
    SEEN.clear()
    PEERS.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_json_streams_uploads_and_reuse(server: str) -> None:
    api = Api(Target(server, "tok"))
    assert api.call("GET", "/a b/é", params={"x": "1 2", "n": None, "l": ["a", "b"]}) == {
        "path": "/a%20b/%C3%A9?x=1+2&l=a&l=b",
        "got": 0,
    }
    assert api.call("POST", "/up", json={"k": "v"})["got"] == len(b'{"k": "v"}')
    assert PEERS[0] == PEERS[1]  # one kept-alive connection
    with api.stream("POST", "/stream", json={}) as response:
        assert list(response.iter_lines()) == [f'{{"log": "line {n}"}}' for n in range(3)]
    assert api.call("GET", "/close") == "until close"
    assert api.call("POST", "/up", content=iter([b"abc", b"", b"defg"]))["got"] == 7
    assert SEEN[-1][2] == b"abcdefg"
    assert api.exists("/present")
    assert not api.exists("/missing")
    with pytest.raises(CliError) as info:
        api.call("GET", "/missing")
    assert info.value.message == "no such thing [app] (HTTP 404)"


def test_unreachable_and_bad_urls() -> None:
    with pytest.raises(CliError, match="cannot reach the Klink server"):
        Api(Target("http://127.0.0.1:9", None)).call("GET", "/x")
    for bad in ("ftp://x", "http://", "http://h:port", "nohost"):
        with pytest.raises(CliError, match="must be http"):
            Api(Target(bad, None))


def test_encoding_helpers() -> None:
    from urllib.parse import quote as std_quote
    from urllib.parse import urlencode

    for text in ("a b", "é/ü", "~-._", "&=?#"):
        assert quote(text) == std_quote(text, safe="")
    assert query({"a": "x y", "b": ["1", "2"]}) == urlencode({"a": "x y", "b": ["1", "2"]}, True)
    assert split_url("https://[::1]:8/p/") == ("https", "::1", 8, "/p/")
    assert split_url("http://h") == ("http", "h", None, "")
