"""The metric source a canary reads, in order of preference:

1. ``prometheus_url``: an environment's own Prometheus, when it names one (any provider);
2. the provider's own Prometheus (``Provider.prometheus()``; local: the one the daemon starts
   on first use, scraping HAProxy's servers labelled with their groups), at its scrape interval;
3. CloudWatch through the provider on aws (``metric_data``);
4. else InvalidInput on ``prometheus_url``: nothing to read metrics from.
"""

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
    """The source for a canary on ``provider`` (``scrape_interval``: of ``prometheus_url``'s)."""
    if prometheus_url:
        return PrometheusSource(prometheus_url, scrape_interval=scrape_interval)
    own = provider.prometheus()
    if own is not None:
        return PrometheusSource(own.url, scrape_interval=own.scrape_interval)
    if provider.name == "aws":
        return CloudWatchSource(provider, target_group_of=target_group_of)
    raise InvalidInput(
        f"a canary on the {provider.name} provider needs a Prometheus to read metrics from",
        field="prometheus_url",
    )
