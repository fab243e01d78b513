"""Drift alerts go through the one notifier built from settings (they once built a bare one
without the configured URLs, so alerts to named rooms always failed)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from klink.infra.drift import notify_drift
from klink.service.runtime import Runtime
from tests.conftest import make_settings


@pytest.fixture
def relay() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_drift_to_a_named_room_uses_the_configured_webhook(
    tmp_path: Path, relay: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = relay
    settings = make_settings(tmp_path / "home", KLINK_NOTIFY_WEBHOOK_URL=url)
    runtime = Runtime.open(settings)
    try:
        report = {"actions": [{"line": "+ security group web"}]}
        notify_drift(runtime, "search", "prod", {"deploymentRooms": {"prod": "#ops"}}, report)
        assert len(received) == 1
        assert received[0]["room"] == "#ops"
        assert "drift" in json.dumps(received[0]).lower()
        # The same notifier object serves deployments: built once.
        assert runtime.notifier is runtime.notifier
    finally:
        runtime.close()
