"""HAProxy server slots: a backend that runs out of slots gets more through one reload, and
the servers it had keep serving."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from klink.providers import base
from klink.providers.local.cloud import LocalCloud
from tests.conftest import free_port
from tests.local.conftest import get_json, wait_for

pytestmark = pytest.mark.slow


def serve(address: str, port: int, name: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = json.dumps({"version": name}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer((address, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[LocalCloud]:
    cloud = LocalCloud(tmp_path / "home")
    yield cloud
    cloud.lb.stop()


def test_running_out_of_slots_grows_them_with_servers_kept(cloud: LocalCloud) -> None:
    port, frontend = free_port(), free_port()
    servers = [serve(f"127.0.0.{10 + i}", port, f"s{i}") for i in range(3)]
    try:
        cloud.ensure_target_group(
            base.TargetGroupSpec(
                name="web",
                port=port,
                health_check_interval_seconds=1,
                healthy_threshold=1,
                frontend_port=frontend,
            )
        )
        cloud.state.target_groups["web"]["slots"] = 1
        for i in range(3):
            cloud.state.instances[f"i-{i}"] = {"ip": f"127.0.0.{10 + i}"}
        cloud.register_instances("web", ["i-0"])
        wait_for(lambda: {t.state for t in cloud.target_health("web")} == {"healthy"})
        cloud.register_instances("web", ["i-1", "i-2"])
        assert cloud.state.target_groups["web"]["slots"] >= 3
        wait_for(lambda: [t.state for t in cloud.target_health("web")] == ["healthy"] * 3)
        seen = {get_json(f"http://127.0.0.1:{frontend}/")["version"] for _ in range(12)}
        assert seen == {"s0", "s1", "s2"}
        # Draining frees a slot for the next registration.
        cloud.deregister_instances("web", ["i-0"])
        assert {t.instance_id: t.state for t in cloud.target_health("web")}["i-0"] == "draining"
        seen = {get_json(f"http://127.0.0.1:{frontend}/")["version"] for _ in range(12)}
        assert seen == {"s1", "s2"}
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
