"""FakeMetricSource: a FAKE metric source (``analysis.sources.MetricSource``) for strategy tests.

Each group's series is generated, seeded by (group, metric, start), from a per-metric level with
noise; a test makes one group misbehave with ``worse(group, metric, by)``. Every question asked
is recorded in ``asked`` (metric, group, start, end, step), so that tests check the windows the
canary judged. ``down`` makes it raise ``MetricsUnavailable`` (a Prometheus that does not
answer). The real sources (Prometheus, CloudWatch) are tested in tests/analysis.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime

from klink.analysis.sources import MetricsUnavailable
from klink.config.canary import CanaryMetric
from klink.errors import InvalidInput

LEVELS = {"error-rate": 0.001, "latency-p50": 0.020, "latency-p99": 0.080}


@dataclass
class FakeMetricSource:
    kind: str = "fake"
    min_step: float = 1.0
    down: int = 0  # the next ``down`` calls fail
    shifts: dict[tuple[str, str], float] = field(default_factory=dict)
    asked: list[tuple[str, str, datetime, datetime, float]] = field(default_factory=list)

    refused: set[str] = field(default_factory=set)  # metric names ``check`` refuses

    def check(self, metric: CanaryMetric) -> None:
        if metric.name in self.refused:
            raise InvalidInput(f"fake: the query of metric {metric.name} is refused", field="query")

    def worse(self, group: str, metric: str, by: float) -> None:
        self.shifts[(group, metric)] = by

    def series(
        self, metric: CanaryMetric, group: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        if self.down > 0:
            self.down -= 1
            raise MetricsUnavailable("fake metric source is down")
        self.asked.append((metric.name, group, start, end, step))
        level = LEVELS.get(metric.builtin or metric.name, 1.0)
        noise = random.Random(f"{group}/{metric.name}/{start.isoformat()}")  # noqa: S311
        count = max(1, math.floor((end - start).total_seconds() / step))
        shift = self.shifts.get((group, metric.name), 0.0)
        return [max(0.0, level * (1 + noise.gauss(0, 0.05)) + shift) for _ in range(count)]
