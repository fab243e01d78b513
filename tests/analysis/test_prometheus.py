"""Prometheus end to end on the real local cloud: example services launched as instances of
four deployment groups, weighted members of one balancer (25 each), behind its real HAProxy,
scraped by the daemon's own Prometheus (``provider.prometheus()``) through the daemon's
``/metrics``, where each server slot's series carry its group; judged by the canary's built-in
metrics read through ``source_for(provider)``.

A baseline (two instances), a good twin, one answering 5 % with 500 and one 100 ms slower. Load
goes through HAProxy for 20 s; then each one is judged against the baseline from Prometheus's
``query_range``, and each group's own numbers (requests, errors) are checked against the load.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from klink.analysis.factory import source_for
from klink.analysis.prometheus import PrometheusSource, render_query
from klink.analysis.sources import MetricsUnavailable, analyse
from klink.cli.loadgen import LoadGenerator
from klink.config.canary import CanaryMetric, CanaryParams
from klink.errors import InvalidInput
from klink.providers.local.promserver import ScrapeTarget, render_config
from tests.analysis.local_cloud import (
    TARGET_GROUP,
    Member,
    add_members,
    balancer,
    local_cloud,
    scraping_prometheus,
)
from tests.conftest import free_port

pytestmark = pytest.mark.slow

BASELINE, TWIN, ERRORS, SLOW = (f"hello-dev-v00{i}" for i in range(1, 5))
MEMBERS = {
    BASELINE: Member("1.0", size=2),
    TWIN: Member("1.1"),
    ERRORS: Member("2.0", properties={"fault.errorRate": 0.05}),
    SLOW: Member("3.0", properties={"fault.latencyMs": 100}),
}
LOAD_SECONDS = 20
CANARY = CanaryParams.model_validate({"intervalSeconds": LOAD_SECONDS, "stepSeconds": 2})


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run the whole scene once for the module; yields the source, the window and the load."""
    root = tmp_path_factory.mktemp("scene")
    home = root / "home"
    with local_cloud(home) as cloud:
        port, frontend = balancer(cloud)
        add_members(cloud, home, root, port, MEMBERS)
        cloud.set_traffic(TARGET_GROUP, dict.fromkeys(MEMBERS, 25))
        endpoint = scraping_prometheus(cloud, home)
        source = source_for(cloud)
        assert isinstance(source, PrometheusSource)
        start = datetime.now(UTC)
        url = f"http://127.0.0.1:{frontend}/"
        with LoadGenerator(url, threads=4, pause=0.01, max_seconds=LOAD_SECONDS) as load:
            time.sleep(LOAD_SECONDS)
        end = datetime.now(UTC)
        time.sleep(2.5)  # the last scrapes land
        try:
            yield {
                "source": source,
                "prometheus": endpoint.url,
                "start": start + timedelta(seconds=2),  # the first rate needs two scrapes
                "end": end,
                "load": load.result,
            }
        finally:
            source.close()


def instant(measured: dict[str, Any], query: str) -> dict[str | None, float]:
    """An instant query at the end of the load, by ``group`` label (None: no group)."""
    answer = httpx.get(
        f"{measured['prometheus']}/api/v1/query",
        params={"query": query, "time": f"{measured['end'].timestamp() + 1:.3f}"},
        timeout=5,
    ).json()
    assert answer["status"] == "success", answer
    return {r["metric"].get("group"): float(r["value"][1]) for r in answer["data"]["result"]}


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
    servers = instant(measured, "count by (group) (haproxy_server_weight)")
    # Each member's slots carry its group; the free slots (32 in all) carry none.
    assert servers == {BASELINE: 2, TWIN: 1, ERRORS: 1, SLOW: 1, None: 32 - 5}


def test_each_group_is_measured_by_its_own_numbers(measured: dict[str, Any]) -> None:
    window = f"{round((measured['end'] - measured['start']).total_seconds()) + 4}s"
    served = instant(
        measured, f"sum by (group) (increase(haproxy_server_http_responses_total[{window}]))"
    )
    failed = instant(
        measured,
        f'sum by (group) (increase(haproxy_server_http_responses_total{{code="5xx"}}[{window}]))',
    )
    load = measured["load"]
    total = sum(served[g] for g in MEMBERS)
    print(f"load: {load.sent} sent, {load.failed} failed; served by group {served}; 5xx {failed}")
    assert total == pytest.approx(load.sent, rel=0.15)
    for group in MEMBERS:  # a quarter of the requests each, as weighted
        assert served[group] / total == pytest.approx(0.25, abs=0.04), served
    assert served.get(None, 0.0) == 0.0  # free slots served nothing
    # Only the failing group's servers answered 500s: as many as the users saw.
    assert failed[ERRORS] == pytest.approx(load.failed, rel=0.2, abs=3)
    assert failed[BASELINE] == failed[TWIN] == failed[SLOW] == 0.0


def test_five_percent_errors_fail_the_canary_on_the_critical_metric(
    measured: dict[str, Any],
) -> None:
    report = judge_against_baseline(measured, ERRORS)
    print("5 % errors:", {m.name: (m.verdict, m.canary.median, m.p) for m in report.metrics})
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
    print("+100 ms:", {m.name: (m.verdict, m.effect, m.p) for m in report.metrics})
    verdicts = {m.name: m.verdict for m in report.metrics}
    assert verdicts == {"error-rate": "pass", "latency-p50": "fail", "latency-p99": "fail"}
    assert report.verdict == "fail"
    # Request percentiles by group: the median moves by the 100 ms added (within a bucket).
    assert 0.075 < report.metrics[1].effect < 0.13


def test_a_good_version_passes(measured: dict[str, Any]) -> None:
    report = judge_against_baseline(measured, TWIN)
    print("twin:", report.score, {m.name: (m.verdict, m.effect, m.p) for m in report.metrics})
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


def test_a_source_checks_each_metric_before_any_interval(measured: dict[str, Any]) -> None:
    source = measured["source"]
    for builtin in ("error-rate", "latency-p50", "latency-p99"):
        source.check(CanaryMetric(name=builtin, builtin=builtin))  # Prometheus accepts them
    source.check(CanaryMetric(name="mine", query='sum(rate(up{group="$group"}[$step]))'))
    cases = [
        (CanaryMetric(name="broken", query='sum(rate(x{group="$group"}['), "prometheus refused"),
        (CanaryMetric(name="all", query="sum(up)"), "$group"),
    ]
    for metric, words in cases:
        with pytest.raises(InvalidInput) as info:
            source.check(metric)
        assert info.value.field == "query"
        assert words in info.value.message


def test_queries_cannot_be_rewritten_by_a_group_name() -> None:
    metric = CanaryMetric(name="e", builtin="error-rate")
    assert 'group="hello-dev-v001"' in render_query(metric, BASELINE, 2)
    assert "[2s]" in render_query(metric, BASELINE, 2)
    with pytest.raises(InvalidInput):
        render_query(metric, 'x"} or vector(1) or {a="', 2)
    p99 = render_query(CanaryMetric(name="l", builtin="latency-p99"), BASELINE, 4, scrape=1)
    assert "histogram_quantile(0.99," in p99
    assert "[4s]" in p99
    mine = CanaryMetric(name="m", query='max_over_time(up{group="$group"}[$step:$scrape])')
    assert "[4s:1s]" in render_query(mine, BASELINE, 4, scrape=1)  # one sample per scrape


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


def test_the_config_scrapes_loopback_targets_with_no_relabelling() -> None:
    text = render_config([ScrapeTarget("local-cloud", "http://127.0.0.1:9101/metrics")], 1.0)
    assert "scrape_interval: 1s" in text
    assert "127.0.0.1:9101" in text
    assert "relabel" not in text  # the daemon labels the groups itself
    with pytest.raises(InvalidInput):
        ScrapeTarget("far", "http://10.0.0.1:9101/metrics")
