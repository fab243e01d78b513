"""A metric source over Prometheus's HTTP API (``GET /api/v1/query_range``).

A metric's query is PromQL (its own, or the builtin's from ``builtin_metrics``) in which
``$group`` stands for the group's name (a query without it is refused: it would measure the same
thing for both groups), ``$step`` for the step as a duration (``10s``) and ``$scrape`` for the
scrape interval;
group names are checked against the group-name rule before they go into a query, so a query
can never be rewritten by a name. A query must come back as at most one series: more (a query
that does not aggregate over servers) is refused with ``InvalidInput`` naming the metric, since
pooling them silently would judge something else than what was written. No series at all is
an empty list (``nodata`` for the judge).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import httpx

from klink.analysis import builtin_metrics
from klink.analysis.servers import is_group_name
from klink.analysis.sources import MetricsUnavailable
from klink.config.canary import CanaryMetric
from klink.errors import InvalidInput
from klink.providers.local.promserver import duration

__all__ = ["PrometheusSource", "duration", "render_query"]


def render_query(metric: CanaryMetric, group: str, step: float, scrape: float = 15.0) -> str:
    if not is_group_name(group):
        raise InvalidInput(f"{group!r} is not a group name", field="group")
    text = metric.query
    if text is None:
        assert metric.builtin is not None  # the config model requires one of the two
        text = builtin_metrics.PROMQL[metric.builtin]
    elif "$group" not in text:
        # The same series for baseline and canary: such a metric would pass every canary.
        raise InvalidInput(
            f"the query of metric {metric.name} must select the group with $group",
            field="query",
        )
    return (
        text.replace("$group", group)
        .replace("$step", duration(step))
        .replace("$scrape", duration(scrape))
    )


CHECK_GROUP = "check-query-v000"  # a group name that selects nothing, to check a query with


def _value(raw: str) -> float:
    value = float(raw)  # Prometheus writes "NaN", "+Inf", "-Inf"
    return value if math.isfinite(value) else math.nan


class PrometheusSource:
    kind = "prometheus"

    def __init__(
        self,
        url: str,
        *,
        scrape_interval: float = 15.0,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.scrape_interval = scrape_interval
        self.min_step = 2 * scrape_interval
        self._client = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._client.close()

    def _api(self, path: str, params: dict[str, str], what: str) -> Any:
        """The ``data`` of one API answer; a refused query is InvalidInput on ``query``."""
        try:
            answer = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise MetricsUnavailable(f"prometheus at {self.url}: {exc}") from None
        if answer.status_code >= 500:
            raise MetricsUnavailable(f"prometheus at {self.url}: HTTP {answer.status_code}")
        try:
            body = answer.json()
        except ValueError:
            raise MetricsUnavailable(f"prometheus at {self.url}: not JSON") from None
        if body.get("status") != "success":
            raise InvalidInput(
                f"prometheus refused {what}: {body.get('error', 'unknown error')}",
                field="query",
            )
        return body["data"]

    def query_range(self, query: str, start: datetime, end: datetime, step: float) -> Any:
        """The ``data.result`` of one range query."""
        params = {
            "query": query,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": duration(step),
        }
        return self._api("/api/v1/query_range", params, "the query")["result"]

    def check(self, metric: CanaryMetric) -> None:
        """Refuse a query this source cannot run (InvalidInput on ``query``), before any
        interval: it must select the group with ``$group``, and Prometheus must accept it
        (an instant query, rendered for a sample group)."""
        query = render_query(metric, CHECK_GROUP, 2 * self.scrape_interval, self.scrape_interval)
        self._api("/api/v1/query", {"query": query}, f"the query of metric {metric.name}")

    def series(
        self, metric: CanaryMetric, group: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        query = render_query(metric, group, step, self.scrape_interval)
        result = self.query_range(query, start, end, step)
        if len(result) > 1:
            raise InvalidInput(
                f"the query of metric {metric.name} gives {len(result)} series for group"
                f" {group}; aggregate it to one (sum, avg, max …)",
                field="query",
            )
        if not result:
            return []
        return [_value(raw) for _stamp, raw in result[0]["values"]]
