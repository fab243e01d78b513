"""The metric-source interface and one interval's analysis.

A ``MetricSource`` answers one question: the values of one metric for one deployment group,
one value per ``step`` seconds over [start, end]. Values may be NaN (no requests in a step): the
judge drops them. A source raises ``InvalidInput`` for a query it cannot run (field ``query``)
and ``MetricsUnavailable`` when its backend cannot be reached (transient: the strategy's action
retries later). ``analyse`` reads every metric of a canary for both groups and judges them.

The step: ``stepSeconds`` from the config, else ``intervalSeconds / 20`` (20 values per group per
interval), never below the source's ``min_step`` (two scrapes for Prometheus, so that every
``rate`` has two samples; 60 s for CloudWatch's ELB metrics) and always a whole multiple of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from klink.analysis import builtin_metrics
from klink.analysis.judge import DEFAULT_ALPHA, IntervalReport, MetricRule, Thresholds, judge
from klink.config.canary import CanaryMetric, CanaryParams
from klink.errors import Unavailable

VALUES_PER_INTERVAL = 20


class MetricsUnavailable(Unavailable):
    """The metrics backend did not answer (down, timed out, 5xx): try again later (transient:
    the engine retries the canary's action within its error budget)."""

    status = 502
    code = "metrics_unavailable"


class MetricSource(Protocol):
    kind: str  # "prometheus" | "cloudwatch"
    min_step: float  # seconds

    def check(self, metric: CanaryMetric) -> None:
        """Refuse, before any interval, a metric this source cannot measure (InvalidInput on
        field ``query``); MetricsUnavailable when the backend does not answer."""
        ...

    def series(
        self, metric: CanaryMetric, group: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        """One value per step for ``group`` (NaN where a step has none)."""
        ...


def rule_of(metric: CanaryMetric) -> MetricRule:
    min_effect = metric.min_effect
    if min_effect is None:
        min_effect = builtin_metrics.MIN_EFFECT.get(metric.builtin or "", 0.0)
    return MetricRule(
        name=metric.name,
        direction=metric.direction,
        critical=metric.critical,
        tolerance=metric.tolerance,
        min_effect=min_effect,
    )


def choose_step(canary: CanaryParams, min_step: float) -> float:
    wanted = canary.step_seconds or canary.interval_seconds / VALUES_PER_INTERVAL
    return max(1, math.ceil(wanted / min_step)) * min_step


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def analyse(
    source: MetricSource,
    canary: CanaryParams,
    *,
    baseline: str,
    canary_group: str,
    start: datetime,
    end: datetime,
    interval: int = 0,
    metrics: Sequence[CanaryMetric] | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> IntervalReport:
    """Judge the canary group against the baseline group over [start, end], on ``metrics``
    (default: all of the canary's) at significance ``alpha``."""
    step = choose_step(canary, source.min_step)
    series = [
        (
            rule_of(metric),
            source.series(metric, baseline, start, end, step),
            source.series(metric, canary_group, start, end, step),
        )
        for metric in (canary.metrics if metrics is None else metrics)
    ]
    return judge(
        series,
        interval=interval,
        alpha=alpha,
        thresholds=Thresholds(pass_=canary.thresholds.pass_, marginal=canary.thresholds.marginal),
        start=_iso(start),
        end=_iso(end),
    )
