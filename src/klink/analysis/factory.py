"""The metric source of a provider: CloudWatch through the provider where it has one (aws),
else the Prometheus at ``prometheus_url`` (local: the one ``promserver`` runs, which scrapes
the local balancer; or a team's own)."""

from __future__ import annotations

from collections.abc import Callable

from klink.analysis.cloudwatch import CloudWatchSource
from klink.analysis.prometheus import PrometheusSource
from klink.analysis.sources import MetricSource
from klink.errors import InvalidInput
from klink.providers.base import Provider


def source_for(
    provider: Provider,
    *,
    prometheus_url: str | None = None,
    scrape_interval: float = 15.0,
    target_group_of: Callable[[str], str] | None = None,
) -> MetricSource:
    """Prometheus when a URL is given (any provider), else CloudWatch on aws."""
    if prometheus_url:
        return PrometheusSource(prometheus_url, scrape_interval=scrape_interval)
    if provider.name == "aws":
        return CloudWatchSource(provider, target_group_of=target_group_of)
    raise InvalidInput(
        f"a canary on the {provider.name} provider needs a Prometheus to read metrics from",
        field="prometheus_url",
    )
