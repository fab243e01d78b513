"""FakeMetrics: a FAKE CloudWatch for FakeProvider (``metric_data``), for strategy tests.

Tests put series with ``put_metric`` (selected as a real query selects them: target group or
dimensions, metric name, statistic) and read back every batch of queries asked in
``metric_queries``. Points are returned oldest first within [start, end), as the AWS provider
returns them. Nothing is computed: what a test puts is what a query gets.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime

from klink.providers.base import MetricQuery, MetricSeries

_Key = tuple[str | None, tuple[tuple[str, str], ...], str, str]


def _key(
    target_group: str | None, dimensions: Mapping[str, str], metric_name: str, statistic: str
) -> _Key:
    return (target_group, tuple(sorted(dimensions.items())), metric_name, statistic)


class FakeMetrics:
    _metrics_lock = threading.Lock()

    @property
    def metric_queries(self) -> list[list[MetricQuery]]:
        """Every ``metric_data`` call's queries, in order."""
        if not hasattr(self, "_metric_queries"):
            self._metric_queries: list[list[MetricQuery]] = []
        return self._metric_queries

    @property
    def _metric_points(self) -> dict[_Key, list[tuple[datetime, float]]]:
        if not hasattr(self, "_points"):
            self._points: dict[_Key, list[tuple[datetime, float]]] = {}
        return self._points

    def put_metric(
        self,
        metric_name: str,
        statistic: str,
        points: Sequence[tuple[datetime, float]],
        *,
        target_group: str | None = None,
        dimensions: Mapping[str, str] | None = None,
    ) -> None:
        with self._metrics_lock:
            key = _key(target_group, dimensions or {}, metric_name, statistic)
            self._metric_points.setdefault(key, []).extend(points)

    def metric_data(
        self, queries: Sequence[MetricQuery], start: datetime, end: datetime
    ) -> dict[str, MetricSeries]:
        with self._metrics_lock:
            self.metric_queries.append(list(queries))
            out: dict[str, MetricSeries] = {}
            for query in queries:
                key = _key(query.target_group, query.dimensions, query.metric_name, query.statistic)
                points = sorted(p for p in self._metric_points.get(key, ()) if start <= p[0] < end)
                out[query.id] = MetricSeries(id=query.id, points=tuple(points))
            return out
