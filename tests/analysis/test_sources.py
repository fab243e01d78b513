"""The small pieces around the sources: steps, rules, durations, which source, the server."""

from __future__ import annotations

from pathlib import Path

import pytest

from klink.analysis.cloudwatch import CloudWatchSource
from klink.analysis.factory import source_for
from klink.analysis.prometheus import PrometheusSource, duration
from klink.analysis.sources import choose_step, rule_of
from klink.config.canary import CanaryMetric, CanaryParams
from klink.errors import InvalidInput, ProviderError
from klink.providers.base import PrometheusEndpoint
from klink.providers.local.promserver import PrometheusServer, ScrapeTarget
from klink.testing.fake_provider import FakeProvider


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
    assert local_like.prometheus() is None  # the default: no Prometheus of its own
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

    class OwnPrometheus(FakeProvider):
        """A provider that runs a Prometheus of its own (as the local cloud's daemon does)."""

        def prometheus(self) -> PrometheusEndpoint:
            return PrometheusEndpoint("http://127.0.0.1:9091", scrape_interval=0.5)

    own = source_for(OwnPrometheus())
    assert isinstance(own, PrometheusSource)
    assert (own.url, own.scrape_interval, own.min_step) == ("http://127.0.0.1:9091", 0.5, 1.0)
    own.close()
    # An environment's own Prometheus comes first, even where the provider has one.
    theirs = source_for(OwnPrometheus(), prometheus_url="http://127.0.0.1:9092", scrape_interval=5)
    assert isinstance(theirs, PrometheusSource)
    assert (theirs.url, theirs.scrape_interval) == ("http://127.0.0.1:9092", 5)
    theirs.close()

    class AwsWithPrometheus(OwnPrometheus):
        name = "aws"

    assert isinstance(source_for(AwsWithPrometheus()), PrometheusSource)


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
    loads = prometheus.log_path.read_text().count("Loading configuration file")
    assert again.start([target]) == url  # the same config: kept as it is, not reloaded
    assert prometheus.log_path.read_text().count("Loading configuration file") == loads
    assert again.start([target, ScrapeTarget("more", "http://127.0.0.1:2/metrics")]) == url
    assert again.pid() == prometheus.pid()  # reloaded, not restarted
    assert "job_name: more" in prometheus.config_path.read_text()
    assert prometheus.log_path.read_text().count("Loading configuration file") == loads + 1
    again.stop()
    assert not prometheus.running()
    with pytest.raises(ProviderError):
        _ = prometheus.url
