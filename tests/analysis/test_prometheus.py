"""Prometheus end to end: real example services behind a real HAProxy, scraped by a real
Prometheus, judged by the canary's built-in metrics.

Four versions of the example service answer behind one backend, each server named after its
group as ``servers.py`` assumes (``hello-dev-v001-0``): a baseline, a good twin, one answering
5 % with 500 and one 100 ms slower. Load goes through HAProxy for 20 s; then each one is judged
against the baseline from Prometheus's ``query_range``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from klink.analysis.prometheus import PrometheusSource, render_query
from klink.analysis.promserver import PrometheusServer, ScrapeTarget, render_config
from klink.analysis.sources import MetricsUnavailable, analyse
from klink.cli.loadgen import LoadGenerator
from klink.config.canary import CanaryMetric, CanaryParams
from klink.errors import InvalidInput
from klink.providers.local.haproxy import Backend, HAProxy, render
from tests.analysis.example_service import running
from tests.conftest import free_port

pytestmark = pytest.mark.slow

BASELINE, TWIN, ERRORS, SLOW = (f"hello-dev-v00{i}" for i in range(1, 5))
FAULTS: dict[str, dict[str, object]] = {
    BASELINE: {},
    TWIN: {},
    ERRORS: {"fault.errorRate": 0.05},
    SLOW: {"fault.latencyMs": 100},
}
LOAD_SECONDS = 20
CANARY = CanaryParams.model_validate({"intervalSeconds": LOAD_SECONDS, "stepSeconds": 2})


class Balancer(HAProxy):
    """The local HAProxy, with servers named after their groups (one port each)."""

    def __init__(self, folder: Path, frontend: int, ports: dict[str, int]) -> None:
        super().__init__(folder)
        self.frontend, self.ports = frontend, ports

    def start(self) -> None:
        backend = Backend("hello-dev", self.frontend, 0, "/healthcheck", 500, 1, 2, {}, slots=0)
        text = render([backend], self.socket_path, self.state_path, self.metrics_port())
        text += "".join(
            f"    server {group}-0 127.0.0.1:{port} check inter 500 rise 1 fall 2\n"
            for group, port in self.ports.items()
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(text)
        subprocess.run(
            ["haproxy", "-D", "-f", str(self.config_path), "-p", str(self.pid_path)], check=True
        )

    def stop(self) -> None:
        for pid in self.pid_path.read_text().split():
            os.kill(int(pid), signal.SIGTERM)


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run the whole scene once for the module; yields the source, the window and the load."""
    root = tmp_path_factory.mktemp("scene")
    with ExitStack() as stack:
        ports = {}
        for group, faults in FAULTS.items():
            url, _ = stack.enter_context(running(root / group, group, **faults))
            ports[group] = int(url.rsplit(":", 1)[1])
        balancer = Balancer(root / "haproxy", free_port(), ports)
        balancer.start()
        stack.callback(balancer.stop)
        server = PrometheusServer(root / "prometheus", scrape_interval=1.0)
        stack.callback(server.stop)
        server.start([ScrapeTarget("haproxy", balancer.metrics_url())])
        server.wait_scraped("haproxy")
        source = PrometheusSource(server.url, scrape_interval=1.0)
        stack.callback(source.close)
        frontend = f"http://127.0.0.1:{balancer.frontend}/"
        deadline = time.monotonic() + 20
        while httpx.get(frontend, timeout=5).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        start = datetime.now(UTC)
        with LoadGenerator(frontend, threads=4, pause=0.01, max_seconds=LOAD_SECONDS) as load:
            time.sleep(LOAD_SECONDS)
        end = datetime.now(UTC)
        time.sleep(2.5)  # the last scrapes land
        yield {
            "source": source,
            "server": server,
            "start": start + timedelta(seconds=2),  # the first rate needs two scrapes
            "end": end,
            "load": load.result,
        }


def judge_against_baseline(measured: dict[str, Any], group: str) -> Any:
    return analyse(
        measured["source"],
        CANARY,
        baseline=BASELINE,
        canary_group=group,
        start=measured["start"],
        end=measured["end"],
    )


def test_servers_are_labelled_with_their_group(measured: dict[str, Any]) -> None:
    answer = httpx.get(
        f"{measured['server'].url}/api/v1/query",
        params={"query": "count by (group) (haproxy_server_weight)"},
        timeout=5,
    ).json()
    groups = {r["metric"].get("group") for r in answer["data"]["result"]}
    assert groups == set(FAULTS)


def test_five_percent_errors_fail_the_canary_on_the_critical_metric(
    measured: dict[str, Any],
) -> None:
    report = judge_against_baseline(measured, ERRORS)
    assert report.verdict == "fail", report.to_json()
    assert report.critical_failures == ("error-rate",)
    errors = report.metrics[0]
    assert errors.baseline.median == 0.0
    assert errors.canary.median == pytest.approx(0.05, abs=0.02)
    assert errors.canary.count >= 7  # one value per 2 s step
    # What users saw: a quarter of the traffic, 5 % of it failed.
    load = measured["load"]
    assert load.failed == pytest.approx(load.sent * 0.25 * 0.05, rel=0.3)


def test_one_hundred_ms_slower_fails_on_latency(measured: dict[str, Any]) -> None:
    report = judge_against_baseline(measured, SLOW)
    verdicts = {m.name: m.verdict for m in report.metrics}
    assert verdicts == {"error-rate": "pass", "latency-p50": "fail", "latency-p99": "fail"}
    assert report.verdict == "fail"
    # HAProxy's per-server mean weighs a server's first responses in slowly (it ramps over its
    # window of 1024), so a young server's shift shows smaller than it is, but well above the
    # 5 ms tolerance.
    assert 0.03 < report.metrics[1].effect < 0.13


def test_a_good_version_passes(measured: dict[str, Any]) -> None:
    report = judge_against_baseline(measured, TWIN)
    assert report.verdict == "pass", report.to_json()
    assert report.score == 100.0
    assert all(m.baseline.count >= 7 and m.canary.count >= 7 for m in report.metrics)


def test_a_query_that_returns_several_series_is_refused(measured: dict[str, Any]) -> None:
    metric = CanaryMetric(name="raw", query='haproxy_server_http_responses_total{group="$group"}')
    with pytest.raises(InvalidInput) as info:
        measured["source"].series(metric, BASELINE, measured["start"], measured["end"], 2)
    assert "aggregate it" in info.value.message
    broken = CanaryMetric(name="broken", query='sum(rate(x{group="$group"}[')
    with pytest.raises(InvalidInput) as info:
        measured["source"].series(broken, BASELINE, measured["start"], measured["end"], 2)
    assert info.value.field == "query"
    assert "prometheus refused the query" in info.value.message


def test_queries_cannot_be_rewritten_by_a_group_name() -> None:
    metric = CanaryMetric(name="e", builtin="error-rate")
    assert 'group="hello-dev-v001"' in render_query(metric, BASELINE, 2)
    assert "[2s]" in render_query(metric, BASELINE, 2)
    with pytest.raises(InvalidInput):
        render_query(metric, 'x"} or vector(1) or {a="', 2)
    p99 = render_query(CanaryMetric(name="l", builtin="latency-p99"), BASELINE, 4, scrape=1)
    assert "[4s:1s]" in p99  # one sample per scrape, whatever the server evaluates at


def test_a_query_that_does_not_select_the_group_is_refused() -> None:
    metric = CanaryMetric(name="all", query="sum(rate(haproxy_server_sessions_total[1m]))")
    with pytest.raises(InvalidInput) as info:
        render_query(metric, BASELINE, 2)
    assert "$group" in info.value.message
    assert info.value.field == "query"


def test_an_unreachable_prometheus_is_unavailable_not_a_crash() -> None:
    source = PrometheusSource(f"http://127.0.0.1:{free_port()}", timeout=1)
    now = datetime.now(UTC)
    with pytest.raises(MetricsUnavailable):
        source.series(CanaryMetric(name="e", builtin="error-rate"), BASELINE, now, now, 2)


def test_the_config_relabels_servers_into_groups() -> None:
    text = render_config([ScrapeTarget("haproxy", "http://127.0.0.1:9101/metrics")], 1.0)
    assert "scrape_interval: 1s" in text
    assert "target_label: group" in text
    with pytest.raises(InvalidInput):
        ScrapeTarget("far", "http://10.0.0.1:9101/metrics")
