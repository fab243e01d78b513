"""A metric source over the provider's ``metric_data`` (CloudWatch ``GetMetricData`` on aws).

The analysis never calls AWS itself: it builds ``MetricQuery`` records and the provider (boto3
lives under ``providers/aws`` only) runs them. A group is measured through its target group
(``target_group_of(group)``, by default a target group named like the group, one per
deployment group as weighted traffic needs), whose ELBv2 dimensions the provider adds.

A metric's own ``query`` is one line, ``Namespace MetricName Statistic [Name=Value ...]``, e.g.
``AWS/ApplicationELB HTTPCode_Target_4XX_Count Sum`` (no dimensions: the group's target group)
or ``MyApp Errors Sum AutoScalingGroupName=$group`` (``$group`` is the group's name). The
error-rate builtin is the ratio of two series; CloudWatch leaves out the periods in which a
count was zero, so a period with requests and no 5xx datapoint counts as 0 errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from klink.analysis import builtin_metrics as bm
from klink.analysis.servers import is_group_name
from klink.config.canary import CanaryMetric
from klink.errors import InvalidInput
from klink.providers.base import MetricQuery, Provider

STATISTICS = ("Sum", "Average", "Minimum", "Maximum", "SampleCount")
CLOUDWATCH_MIN_STEP = 60.0  # ELBv2 publishes one value per minute


@dataclass(frozen=True)
class CloudWatchMetric:
    namespace: str
    metric_name: str
    statistic: str
    dimensions: tuple[tuple[str, str], ...] = ()


def _statistic_ok(stat: str) -> bool:
    if stat in STATISTICS:
        return True
    if stat.startswith("p"):
        try:
            return 0 < float(stat[1:]) < 100
        except ValueError:
            return False
    return False


def parse_query(text: str) -> CloudWatchMetric:
    """``Namespace MetricName Statistic [Name=Value ...]``; InvalidInput naming what is wrong."""
    parts = text.split()
    if len(parts) < 3:
        raise InvalidInput(
            "a CloudWatch query is 'Namespace MetricName Statistic [Name=Value ...]',"
            f" not {text!r}",
            field="query",
        )
    namespace, name, stat, *dims = parts
    if not _statistic_ok(stat):
        raise InvalidInput(
            f"statistic {stat!r} is not one of {', '.join(STATISTICS)} or a percentile (p99)",
            field="query",
        )
    pairs: list[tuple[str, str]] = []
    for dim in dims:
        key, sep, value = dim.partition("=")
        if not sep or not key or not value:
            raise InvalidInput(f"dimension {dim!r} is not Name=Value", field="query")
        pairs.append((key, value))
    return CloudWatchMetric(namespace, name, stat, tuple(pairs))


class CloudWatchSource:
    kind = "cloudwatch"
    min_step = CLOUDWATCH_MIN_STEP

    def __init__(
        self, provider: Provider, *, target_group_of: Callable[[str], str] | None = None
    ) -> None:
        self.provider = provider
        self.target_group_of = target_group_of or (lambda group: group)

    def _query(self, qid: str, metric: CloudWatchMetric, group: str, period: int) -> MetricQuery:
        dims = {k: v.replace("$group", group) for k, v in metric.dimensions}
        return MetricQuery(
            id=qid,
            namespace=metric.namespace,
            metric_name=metric.metric_name,
            statistic=metric.statistic,
            period=period,
            dimensions=dims,
            target_group=None if dims else self.target_group_of(group),
        )

    def check(self, metric: CanaryMetric) -> None:
        """Refuse a query this source cannot run (InvalidInput on ``query``), before any
        interval: a query of one's own must parse."""
        if metric.query is not None:
            parse_query(metric.query)

    def series(
        self, metric: CanaryMetric, group: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        if not is_group_name(group):
            raise InvalidInput(f"{group!r} is not a group name", field="group")
        period = max(1, round(step))
        if metric.builtin == "error-rate":
            errors = CloudWatchMetric(bm.ELB_NAMESPACE, bm.ELB_5XX, "Sum")
            requests = CloudWatchMetric(bm.ELB_NAMESPACE, bm.ELB_REQUESTS, "Sum")
            data = self.provider.metric_data(
                [
                    self._query("errors", errors, group, period),
                    self._query("requests", requests, group, period),
                ],
                start,
                end,
            )
            failed = dict(data["errors"].points)
            return [
                failed.get(when, 0.0) / count if count > 0 else math.nan
                for when, count in data["requests"].points
            ]
        if metric.builtin is not None:
            wanted = CloudWatchMetric(
                bm.ELB_NAMESPACE, bm.ELB_RESPONSE_TIME, bm.CLOUDWATCH_LATENCY[metric.builtin]
            )
        else:
            assert metric.query is not None  # the config model requires one of the two
            wanted = parse_query(metric.query)
        data = self.provider.metric_data([self._query("m", wanted, group, period)], start, end)
        return [value for _when, value in data["m"].points]
