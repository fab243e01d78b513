"""A streamed request that the server refuses: the CLI reads the whole error body before it
lets the connection go (it read from a closed socket when the body came in a later packet)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from klink.cli.api import Api, CliError, Target


def test_an_error_body_arriving_late_is_read_before_closing() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    body = b'{"error": {"code": "conflict", "message": "no base image: run bake-base"}}'

    def answer() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(
            b"HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        time.sleep(0.3)  # the body comes in a later packet
        conn.sendall(body)
        time.sleep(0.3)
        conn.close()

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        api = Api(Target(f"http://127.0.0.1:{port}", "t"))
        with pytest.raises(CliError) as failed, api.stream("POST", "/bake/x", json={}):
            pass
        assert "no base image: run bake-base" in failed.value.message
    finally:
        thread.join(5)
        server.close()
