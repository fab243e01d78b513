"""HAProxy's Prometheus exporter, as the local balancer renders and runs it."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from klink.providers.local.haproxy import Backend, HAProxy, Server, render
from tests.analysis.example_service import running
from tests.conftest import free_port

pytestmark = pytest.mark.slow


def backend(frontend_port: int, port: int, servers: dict[str, tuple[str, bool, int]]) -> Backend:
    return Backend(
        name="hello-dev",
        frontend_port=frontend_port,
        port=port,
        health_path="/healthcheck",
        interval_ms=500,
        rise=1,
        fall=2,
        servers=servers,
        slots=2,
    )


def test_the_exporter_frontend_is_rendered_on_loopback_only_when_asked(tmp_path: Path) -> None:
    plain = render([backend(8000, 8080, {})], tmp_path / "s", tmp_path / "st")
    assert "prometheus-exporter" not in plain
    text = render([backend(8000, 8080, {})], tmp_path / "s", tmp_path / "st", metrics_port=9101)
    section = text.split("frontend klink_metrics\n", 1)[1].split("\n\n", 1)[0]
    assert section.splitlines() == [
        "    bind 127.0.0.1:9101",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        "    http-request return status 404",
    ]


def test_haproxy_serves_per_server_metrics_and_keeps_its_port_across_reloads(
    tmp_path: Path,
) -> None:
    lb = HAProxy(tmp_path / "haproxy")
    with running(tmp_path / "hello") as (url, _):
        port = int(url.rsplit(":", 1)[1])
        frontend = free_port()
        try:
            lb.apply([backend(frontend, port, {"i-1": Server("127.0.0.1", False, 0)})])
            metrics_url = lb.metrics_url()
            assert metrics_url.startswith("http://127.0.0.1:")
            with httpx.Client(timeout=5) as client:
                for _ in range(30):
                    client.get(f"http://127.0.0.1:{frontend}/")
                body = client.get(metrics_url).text
                line = (
                    'haproxy_server_http_responses_total{proxy="hello-dev",server="s0",code="2xx"}'
                )
                assert f"{line} 30" in body
                assert client.get(metrics_url.replace("/metrics", "/other")).status_code == 404
                # A reload (a second target group) keeps the exporter where it was.
                second = Backend(**{**backend(free_port(), port, {}).__dict__, "name": "other"})
                lb.apply([backend(frontend, port, {"i-1": Server("127.0.0.1", False, 0)}), second])
                assert lb.metrics_url() == metrics_url
                assert 'proxy="other"' in client.get(metrics_url).text
        finally:
            lb.stop()
    assert HAProxy(tmp_path / "haproxy").metrics_url() == metrics_url  # kept on disk


def test_a_kept_port_taken_meanwhile_never_stops_haproxy_from_starting(tmp_path: Path) -> None:
    lb = HAProxy(tmp_path / "haproxy")
    kept = lb.metrics_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", kept))
        squatter.listen()
        try:
            lb.apply([backend(free_port(), 8080, {})])
            assert lb.running()
            moved = lb.metrics_port()
            assert moved != kept
            assert "haproxy_process" in httpx.get(lb.metrics_url(), timeout=5).text
            # While it runs (reloads), the port stays put.
            lb.apply([backend(free_port(), 8081, {})])
            assert lb.metrics_port() == moved
        finally:
            lb.stop()
