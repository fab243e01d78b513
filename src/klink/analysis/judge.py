"""The canary judge: canary against baseline, metric by metric, with Mann-Whitney U.

One interval, one metric: the two series (one value per step, baseline and canary, from a
``MetricSource``) are compared with the two-sided Mann-Whitney U test (``scipy.stats``), which
assumes nothing about their distributions, and the size of the difference is the
Hodges-Lehmann estimate (the median of every canary-minus-baseline difference), as in
Spinnaker's Kayenta. A metric fails only when both hold:

- the difference is significant: p below its level, which is ``alpha`` (0.05: 95 %
  confidence) for one metric, and Holm's step-down level when an interval judges several
  (``holm``), so that the chance of failing a good canary on *some* metric stays below
  ``alpha`` however many metrics there are (Kayenta tests each at 95 %, so that three metrics
  fail a good canary up to 7 % of the time), and
- the estimate goes the bad way (``direction``: ``increase`` is bad for errors and latency,
  ``decrease`` for throughput, ``either``) by more than the tolerance, which is the larger of
  ``tolerance`` x |baseline median| and ``min_effect`` (absolute, in the metric's units).

The tolerance is what keeps a statistically significant but harmless difference (0.2 ms, on a
service whose two groups share a machine) from failing a canary. A metric with fewer than
``min_points`` usable values in either group is ``nodata`` and is left out of the score.

The score is the share of metrics with data that pass, 0 to 100. Verdict of the interval: a
critical metric that fails makes it ``fail`` whatever the score (the canary ends at once);
otherwise ``pass`` at ``thresholds.pass_`` or more, ``marginal`` at ``thresholds.marginal``
or more, else ``fail``. When no metric has data the verdict is ``marginal`` (a person decides:
low traffic must neither promote nor undo by itself). ``IntervalReport.to_json`` is what is
stored with a deployment; ``IntervalReport.from_json`` reads it back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from scipy.stats import mannwhitneyu

Direction = Literal["increase", "decrease", "either"]
MetricVerdict = Literal["pass", "fail", "nodata"]
Verdict = Literal["pass", "marginal", "fail"]

DEFAULT_ALPHA = 0.05
DEFAULT_MIN_POINTS = 3
DEFAULT_TOLERANCE = 0.1


@dataclass(frozen=True)
class MetricRule:
    """What the judge needs to know about one metric."""

    name: str
    direction: Direction = "increase"
    critical: bool = False
    tolerance: float = DEFAULT_TOLERANCE  # relative to the baseline's median
    min_effect: float = 0.0  # absolute, in the metric's own units


@dataclass(frozen=True)
class Thresholds:
    pass_: float = 95.0
    marginal: float = 75.0


@dataclass(frozen=True)
class Summary:
    """A series in a few numbers for people reading the report, and the values themselves
    (what was judged, so that a report can be checked or judged again)."""

    count: int
    mean: float | None = None
    median: float | None = None
    min: float | None = None
    max: float | None = None
    values: tuple[float, ...] = ()

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            return cls(0)
        array = np.asarray(values, dtype=float)
        return cls(
            count=len(values),
            mean=float(array.mean()),
            median=float(np.median(array)),
            min=float(array.min()),
            max=float(array.max()),
            values=tuple(float(v) for v in values),
        )


@dataclass(frozen=True)
class MetricJudgement:
    name: str
    verdict: MetricVerdict
    direction: Direction
    critical: bool
    baseline: Summary
    canary: Summary
    u: float | None  # the canary's U statistic
    p: float | None
    effect: float | None  # Hodges-Lehmann estimate, canary minus baseline
    tolerance: float  # the absolute tolerance the effect was held to
    reason: str
    alpha: float | None = None  # the significance level p was held to (Holm's, in an interval)


@dataclass(frozen=True)
class IntervalReport:
    interval: int
    verdict: Verdict
    score: float
    metrics: tuple[MetricJudgement, ...]
    thresholds: Thresholds = field(default_factory=Thresholds)
    critical_failures: tuple[str, ...] = ()
    reason: str = ""
    start: str | None = None  # ISO 8601, UTC
    end: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "interval": self.interval,
            "start": self.start,
            "end": self.end,
            "verdict": self.verdict,
            "score": self.score,
            "reason": self.reason,
            "criticalFailures": list(self.critical_failures),
            "thresholds": {"pass": self.thresholds.pass_, "marginal": self.thresholds.marginal},
            "metrics": [_judgement_json(m) for m in self.metrics],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IntervalReport:
        thresholds = data.get("thresholds") or {}
        return cls(
            interval=int(data["interval"]),
            start=data.get("start"),
            end=data.get("end"),
            verdict=data["verdict"],
            score=float(data["score"]),
            reason=data.get("reason", ""),
            critical_failures=tuple(data.get("criticalFailures", ())),
            thresholds=Thresholds(
                pass_=float(thresholds.get("pass", 95.0)),
                marginal=float(thresholds.get("marginal", 75.0)),
            ),
            metrics=tuple(_judgement_of(m) for m in data.get("metrics", ())),
        )


def _judgement_json(m: MetricJudgement) -> dict[str, Any]:
    return {
        "name": m.name,
        "verdict": m.verdict,
        "direction": m.direction,
        "critical": m.critical,
        "baseline": _summary_json(m.baseline),
        "canary": _summary_json(m.canary),
        "u": m.u,
        "p": m.p,
        "effect": m.effect,
        "tolerance": m.tolerance,
        "alpha": m.alpha,
        "reason": m.reason,
    }


def _summary_json(s: Summary) -> dict[str, Any]:
    return {
        "count": s.count,
        "mean": s.mean,
        "median": s.median,
        "min": s.min,
        "max": s.max,
        "values": list(s.values),
    }


def _summary_of(data: Mapping[str, Any]) -> Summary:
    return Summary(**{**data, "values": tuple(data.get("values", ()))})


def _judgement_of(data: Mapping[str, Any]) -> MetricJudgement:
    return MetricJudgement(
        name=data["name"],
        verdict=data["verdict"],
        direction=data["direction"],
        critical=bool(data["critical"]),
        baseline=_summary_of(data["baseline"]),
        canary=_summary_of(data["canary"]),
        u=data.get("u"),
        p=data.get("p"),
        effect=data.get("effect"),
        tolerance=float(data.get("tolerance", 0.0)),
        reason=data.get("reason", ""),
        alpha=data.get("alpha"),
    )


def _finite(values: Sequence[float]) -> list[float]:
    # Prometheus answers NaN for 0/0 (no requests in a step): such a step says nothing.
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def hodges_lehmann(baseline: Sequence[float], canary: Sequence[float]) -> float:
    """The median of all pairwise differences canary[i] - baseline[j]."""
    diffs = np.subtract.outer(np.asarray(canary, dtype=float), np.asarray(baseline, dtype=float))
    return float(np.median(diffs))


def measure(
    rule: MetricRule,
    baseline: Sequence[float],
    canary: Sequence[float],
    *,
    min_points: int = DEFAULT_MIN_POINTS,
) -> MetricJudgement:
    """U, p, effect and tolerance of one metric, before any verdict (``nodata`` or ``pass``)."""
    base, can = _finite(baseline), _finite(canary)
    common: dict[str, Any] = {
        "name": rule.name,
        "direction": rule.direction,
        "critical": rule.critical,
        "baseline": Summary.of(base),
        "canary": Summary.of(can),
    }
    if len(base) < min_points or len(can) < min_points:
        return MetricJudgement(
            **common,
            verdict="nodata",
            u=None,
            p=None,
            effect=None,
            tolerance=0.0,
            reason=f"needs {min_points} values per group, has {len(base)} and {len(can)}",
        )
    tolerance = max(rule.tolerance * abs(float(np.median(base))), rule.min_effect)
    effect = hodges_lehmann(base, can)
    if len(set(base) | set(can)) == 1:
        # Every value the same (0 errors in both): nothing to test, nothing differs.
        u, p = len(base) * len(can) / 2, 1.0
    else:
        result = mannwhitneyu(can, base, alternative="two-sided", method="auto")
        u, p = float(result.statistic), float(result.pvalue)
        if not math.isfinite(p):
            p = 1.0
    return MetricJudgement(
        **common, verdict="pass", u=u, p=p, effect=effect, tolerance=tolerance, reason=""
    )


def decide(
    measured: MetricJudgement, alpha: float, significant: bool | None = None
) -> MetricJudgement:
    """The verdict of a measured metric held to level ``alpha`` (``significant`` overrides
    ``p < alpha``: Holm's step-down can stop before a p that would meet its own level)."""
    if measured.verdict == "nodata" or measured.p is None or measured.effect is None:
        return measured
    p, effect, tolerance = measured.p, measured.effect, measured.tolerance
    if significant is None:
        significant = p < alpha
    higher, lower = effect > tolerance, effect < -tolerance
    bad_way = (higher and measured.direction in ("increase", "either")) or (
        lower and measured.direction in ("decrease", "either")
    )
    if significant and bad_way:
        verdict: MetricVerdict = "fail"
        reason = (
            f"canary {'higher' if higher else 'lower'} by {effect:.6g}"
            f" (tolerance {tolerance:.6g}, p={p:.3g} < {alpha:.3g})"
        )
    else:
        verdict = "pass"
        reason = (
            f"difference {effect:.6g} within tolerance {tolerance:.6g} or harmless"
            if significant
            else f"no significant difference (p={p:.3g}, level {alpha:.3g})"
        )
    return replace(measured, verdict=verdict, reason=reason, alpha=alpha)


def holm(p_values: Sequence[float | None], alpha: float) -> list[tuple[float, bool] | None]:
    """Holm's step-down: per p-value, (its level, significant?); None where nothing was tested.

    The smallest p of m is held to alpha/m, the next to alpha/(m-1), …; from the first that
    misses its level on, none is significant. So the chance that a good canary fails any of its
    m metrics by chance stays below alpha, whatever m.
    """
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    out: list[tuple[float, bool] | None] = [None] * len(p_values)
    stopped = False
    for rank, (p, index) in enumerate(tested):
        level = alpha / (len(tested) - rank)
        stopped = stopped or p >= level
        out[index] = (level, not stopped)
    return out


def judge_metric(
    rule: MetricRule,
    baseline: Sequence[float],
    canary: Sequence[float],
    *,
    alpha: float = DEFAULT_ALPHA,
    min_points: int = DEFAULT_MIN_POINTS,
) -> MetricJudgement:
    """One metric alone, at level ``alpha``; see the module docstring for the rule."""
    return decide(measure(rule, baseline, canary, min_points=min_points), alpha)


def score_of(judgements: Sequence[MetricJudgement]) -> float | None:
    """Share (0-100) of the metrics with data that pass; None when none has data."""
    counted = [j for j in judgements if j.verdict != "nodata"]
    if not counted:
        return None
    return 100.0 * sum(j.verdict == "pass" for j in counted) / len(counted)


def judge(
    series: Sequence[tuple[MetricRule, Sequence[float], Sequence[float]]],
    *,
    interval: int = 0,
    thresholds: Thresholds | None = None,
    alpha: float = DEFAULT_ALPHA,
    min_points: int = DEFAULT_MIN_POINTS,
    start: str | None = None,
    end: str | None = None,
) -> IntervalReport:
    """One interval: ``series`` holds (rule, baseline values, canary values) per metric."""
    limits = thresholds or Thresholds()
    measured = [measure(rule, base, can, min_points=min_points) for rule, base, can in series]
    levels = holm([m.p for m in measured], alpha)
    judgements = tuple(
        m if level is None else decide(m, *level) for m, level in zip(measured, levels, strict=True)
    )
    critical = tuple(j.name for j in judgements if j.critical and j.verdict == "fail")
    score = score_of(judgements)
    verdict: Verdict
    if critical:
        verdict, reason = "fail", f"critical metric failed: {', '.join(critical)}"
    elif score is None:
        verdict, reason = "marginal", "no metric had enough data"
    elif score >= limits.pass_:
        verdict, reason = "pass", f"score {score:.1f} >= pass {limits.pass_:g}"
    elif score >= limits.marginal:
        verdict, reason = "marginal", f"score {score:.1f} >= marginal {limits.marginal:g}"
    else:
        verdict, reason = "fail", f"score {score:.1f} < marginal {limits.marginal:g}"
    return IntervalReport(
        interval=interval,
        verdict=verdict,
        score=0.0 if score is None else round(score, 2),
        metrics=judgements,
        thresholds=limits,
        critical_failures=critical,
        reason=reason,
        start=start,
        end=end,
    )
