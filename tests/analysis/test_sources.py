"""The small pieces around the sources: group names in server names, steps, rules, choice."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from klink.analysis.cloudwatch import CloudWatchSource
from klink.analysis.factory import source_for
from klink.analysis.prometheus import PrometheusSource, duration
from klink.analysis.promserver import PrometheusServer, ScrapeTarget, local_cloud_targets
from klink.analysis.servers import SERVER_GROUP_REGEX, group_of_server, relabel_rule
from klink.analysis.sources import choose_step, rule_of
from klink.config.canary import CanaryMetric, CanaryParams
from klink.errors import InvalidInput, ProviderError
from klink.testing.fake_provider import FakeProvider


@pytest.mark.parametrize(
    ("server", "group"),
    [
        ("hello-dev-v002", "hello-dev-v002"),
        ("hello-dev-v002-3", "hello-dev-v002"),
        ("hello-dev-v002_s0", "hello-dev-v002"),
        ("hello-dev-v002.i-0ab12", "hello-dev-v002"),
        ("search2-prod-v999-i-77", "search2-prod-v999"),
        ("hello-dev-v0021", None),  # v002 followed by a digit is not v002
        ("hello-dev-v02", None),
        ("s0", None),  # a free slot belongs to no group
        ("hello-v001", None),
        ("Hello-dev-v001", None),
        ("hello-dev-v001x", "hello-dev-v001"),
    ],
)
def test_group_of_server(server: str, group: str | None) -> None:
    assert group_of_server(server) == group
    # The Prometheus rule is the same regex, anchored as RE2 anchors it.
    match = re.fullmatch(relabel_rule()["regex"], server)
    assert (match.group(1) if match else None) == group


def test_the_regex_is_plain_enough_for_re2() -> None:
    # No look-arounds, back-references or possessive forms: RE2 (Prometheus) has none.
    assert not any(token in SERVER_GROUP_REGEX for token in ("(?=", "(?!", "(?<", "\\1", "*+"))


@pytest.mark.parametrize(
    ("interval", "step", "min_step", "expected"),
    [
        (300, None, 2.0, 16.0),  # 300 / 20 = 15, up to a multiple of 2
        (20, None, 2.0, 2.0),
        (10, None, 2.0, 2.0),  # never below the source's smallest step
        (300, 5, 2.0, 6.0),
        (600, None, 60.0, 60.0),  # CloudWatch
        (3600, None, 60.0, 180.0),
    ],
)
def test_choose_step(interval: int, step: int | None, min_step: float, expected: float) -> None:
    canary = CanaryParams(interval_seconds=interval, step_seconds=step)
    assert choose_step(canary, min_step) == expected


def test_rules_take_builtin_tolerances_unless_given() -> None:
    assert rule_of(CanaryMetric(name="e", builtin="error-rate")).min_effect == 0.01
    assert rule_of(CanaryMetric(name="e", builtin="latency-p99")).min_effect == 0.010
    assert rule_of(CanaryMetric(name="e", builtin="error-rate", min_effect=0.0)).min_effect == 0
    custom = rule_of(CanaryMetric(name="q", query="up", direction="either", critical=True))
    assert (custom.min_effect, custom.direction, custom.critical) == (0.0, "either", True)


def test_durations() -> None:
    assert [duration(s) for s in (2, 2.0, 0.5, 90, 1.25)] == ["2s", "2s", "500ms", "90s", "1250ms"]


def test_source_for_each_provider() -> None:
    local_like = FakeProvider()
    with pytest.raises(InvalidInput) as info:
        source_for(local_like)
    assert info.value.field == "prometheus_url"
    prom = source_for(local_like, prometheus_url="http://127.0.0.1:9090", scrape_interval=1)
    assert isinstance(prom, PrometheusSource)
    assert prom.min_step == 2
    prom.close()

    class Aws(FakeProvider):
        name = "aws"

    assert isinstance(source_for(Aws()), CloudWatchSource)


@pytest.mark.slow
def test_a_prometheus_started_by_one_process_is_stopped_by_another(
    tmp_path: Path, prometheus: PrometheusServer
) -> None:
    target = ScrapeTarget("self", "http://127.0.0.1:1/metrics")
    url = prometheus.start([target])
    assert url.startswith("http://127.0.0.1:")
    again = PrometheusServer(prometheus.folder)
    assert again.running()
    assert again.url == url
    assert again.start([target, ScrapeTarget("more", "http://127.0.0.1:2/metrics")]) == url
    assert "job_name: more" in prometheus.config_path.read_text()  # reloaded, not restarted
    again.stop()
    assert not prometheus.running()
    with pytest.raises(ProviderError):
        _ = prometheus.url


def test_the_local_cloud_is_scraped_at_its_haproxy_exporter(tmp_path: Path) -> None:
    (target,) = local_cloud_targets(tmp_path)
    port = int((tmp_path / "haproxy" / "metrics.port").read_text())
    assert target == ScrapeTarget("haproxy", f"http://127.0.0.1:{port}/metrics")
    assert local_cloud_targets(tmp_path) == [target]  # the same port every time
