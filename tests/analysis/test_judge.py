"""The judge on generated series: calibrated on good-against-good, sensitive to real harm.

Series are generated the way a canary's look: one value per step, error rates as binomial
counts over the requests of a step, latencies as log-normal. Every run is seeded, so the
figures are the same on every machine.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from klink.analysis.judge import (
    IntervalReport,
    MetricRule,
    Thresholds,
    hodges_lehmann,
    holm,
    judge,
    judge_metric,
)

RUNS = 400
STEPS = 20  # values per group per interval
REQUESTS_PER_STEP = 200

ERRORS = MetricRule("error-rate", critical=True, min_effect=0.01)
P50 = MetricRule("latency-p50", min_effect=0.005)
P99 = MetricRule("latency-p99", min_effect=0.010)


def error_rates(rng: np.random.Generator, rate: float) -> list[float]:
    return list(rng.binomial(REQUESTS_PER_STEP, rate, STEPS) / REQUESTS_PER_STEP)


def latencies(rng: np.random.Generator, median: float, extra: float = 0.0) -> list[float]:
    return list(rng.lognormal(math.log(median), 0.25, STEPS) + extra)


def interval(seed: int, *, canary_errors: float = 0.002, canary_extra: float = 0.0):
    rng = np.random.default_rng(seed)
    return judge(
        [
            (ERRORS, error_rates(rng, 0.002), error_rates(rng, canary_errors)),
            (P50, latencies(rng, 0.040), latencies(rng, 0.040, canary_extra)),
            (P99, latencies(rng, 0.120), latencies(rng, 0.120, canary_extra)),
        ]
    )


def test_good_against_good_fails_at_most_5_percent_of_canaries() -> None:
    reports = [interval(seed) for seed in range(RUNS)]
    failed = sum(r.verdict == "fail" for r in reports)
    not_passed = sum(r.verdict != "pass" for r in reports)
    assert failed / RUNS <= 0.05, failed
    assert not_passed / RUNS <= 0.05, not_passed


@pytest.mark.parametrize(
    ("sigma", "p50", "p99", "errors", "steps", "requests"),
    [
        (0.5, 0.040, 0.120, 0.002, 20, 200),  # noisier latency
        (1.0, 0.200, 0.800, 0.010, 20, 50),  # very noisy, little traffic per step
        (0.5, 0.040, 0.120, 0.020, 10, 20),  # a short interval, a service with 2 % errors
    ],
)
@pytest.mark.parametrize("tolerant", [True, False])
def test_good_against_good_stays_below_5_percent_however_noisy(
    sigma: float, p50: float, p99: float, errors: float, steps: int, requests: int, tolerant: bool
) -> None:
    # Holm's levels hold the chance of failing a good canary on any of its three metrics below
    # 5 % on their own, without help from the tolerances (tolerant=False sets them to 0).
    rules = [ERRORS, P50, P99]
    if not tolerant:
        rules = [MetricRule(r.name, critical=r.critical, tolerance=0.0) for r in rules]
    failed = 0
    for seed in range(RUNS):
        rng = np.random.default_rng(40_000 + seed)

        rates = [list(rng.binomial(requests, errors, steps) / requests) for _ in range(2)]
        times = [list(rng.lognormal(math.log(m), sigma, steps)) for m in (p50, p50, p99, p99)]
        report = judge(
            [
                (rules[0], rates[0], rates[1]),
                (rules[1], times[0], times[1]),
                (rules[2], times[2], times[3]),
            ]
        )
        failed += report.verdict != "pass"
    assert failed / RUNS <= 0.05, failed


@pytest.mark.parametrize(
    ("p_values", "expected"),
    [
        ([0.001, 0.5, 0.02], [(0.05 / 3, True), (0.05, False), (0.05 / 2, True)]),
        # The smallest misses 0.0167: none counts, though 0.024 < 0.025 and 0.04 < 0.05.
        ([0.02, 0.024, 0.04], [(0.05 / 3, False), (0.05 / 2, False), (0.05, False)]),
        ([0.01, 0.02, 0.04], [(0.05 / 3, True), (0.05 / 2, True), (0.05, True)]),
        ([None, 0.04], [None, (0.05, True)]),  # a metric without data is not a test
        ([], []),
    ],
)
def test_holm(p_values: list[float | None], expected: list[tuple[float, bool] | None]) -> None:
    found = holm(p_values, 0.05)
    assert [None if f is None else f[1] for f in found] == [
        None if e is None else e[1] for e in expected
    ]
    assert [None if f is None else f[0] for f in found] == pytest.approx(
        [None if e is None else e[0] for e in expected]
    )


def test_an_interval_holds_each_metric_to_its_holm_level() -> None:
    base = [float(x) for x in range(20)]
    shifted = [x + 5 for x in base]
    alone = judge_metric(MetricRule("m", tolerance=0.0), base, shifted)
    assert alone.p is not None
    assert 0.05 / 3 < alone.p < 0.05  # significant alone, not among three
    assert alone.verdict == "fail"
    same = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    among_good = judge(
        [
            (MetricRule("m", tolerance=0.0), base, shifted),
            (MetricRule("a"), same, same),
            (MetricRule("b"), same, same),
        ]
    )
    assert among_good.metrics[0].verdict == "pass"
    assert among_good.metrics[0].alpha == pytest.approx(0.05 / 3)
    # Step-down: once the two clear failures are counted, it is held to 0.05 and fails too.
    worse = [v + 100 for v in same]
    among_bad = judge(
        [
            (MetricRule("m", tolerance=0.0), base, shifted),
            (MetricRule("a"), same, worse),
            (MetricRule("b"), same, worse),
        ]
    )
    assert [m.verdict for m in among_bad.metrics] == ["fail", "fail", "fail"]
    assert among_bad.metrics[0].alpha == pytest.approx(0.05)


@pytest.mark.parametrize("direction", ["increase", "decrease", "either"])
def test_the_bare_test_is_calibrated_at_95_percent(direction: str) -> None:
    # No tolerance at all: only Mann-Whitney stands between noise and a failure. Both groups
    # from one distribution: a metric with one bad direction fails in about 2.5 % of the runs
    # (one tail of a two-sided test at 95 %), one with "either" in about 5 % (both tails),
    # within the sampling error of 400 runs (one standard error is 1.1 points).
    rule = MetricRule("latency", direction=direction, tolerance=0.0)  # type: ignore[arg-type]
    failures = 0
    for seed in range(RUNS):
        rng = np.random.default_rng(10_000 + seed)
        verdict = judge_metric(rule, latencies(rng, 0.05), latencies(rng, 0.05)).verdict
        failures += verdict == "fail"
    nominal = 0.05 if direction == "either" else 0.025
    assert abs(failures / RUNS - nominal) <= 0.025, failures


def test_five_percent_errors_against_none_is_caught_and_is_critical() -> None:
    for seed in range(100):
        rng = np.random.default_rng(20_000 + seed)
        report = judge(
            [
                (ERRORS, [0.0] * STEPS, error_rates(rng, 0.05)),
                (P50, latencies(rng, 0.040), latencies(rng, 0.040)),
                (P99, latencies(rng, 0.120), latencies(rng, 0.120)),
            ]
        )
        assert report.verdict == "fail", seed
        assert report.critical_failures == ("error-rate",)
        errors = report.metrics[0]
        assert errors.verdict == "fail"
        assert errors.effect == pytest.approx(0.05, abs=0.02)
        assert errors.p is not None
        assert errors.p < 0.001


def test_one_hundred_ms_more_latency_is_caught() -> None:
    for seed in range(100):
        report = interval(30_000 + seed, canary_extra=0.100)
        verdicts = {m.name: m.verdict for m in report.metrics}
        assert verdicts["latency-p50"] == "fail", seed
        assert verdicts["latency-p99"] == "fail", seed
        # Two of three metrics fail: score 33 is below marginal (75).
        assert report.verdict == "fail"
        assert report.score == pytest.approx(100 / 3, abs=0.01)
        assert report.metrics[1].effect == pytest.approx(0.100, abs=0.02)


def test_a_better_canary_is_not_failed_by_an_increase_metric() -> None:
    rng = np.random.default_rng(7)
    faster = judge_metric(P50, latencies(rng, 0.100), latencies(rng, 0.040))
    assert faster.verdict == "pass"
    assert faster.effect is not None
    assert faster.effect < -0.04
    assert faster.p is not None
    assert faster.p < 0.001
    slower = judge_metric(
        MetricRule("throughput", direction="decrease"), [100.0 + i for i in range(10)], [50.0] * 10
    )
    assert slower.verdict == "fail"


def test_a_significant_difference_within_the_tolerance_passes() -> None:
    baseline = [0.0400 + 0.0001 * i for i in range(20)]
    canary = [0.0420 + 0.0001 * i for i in range(20)]  # 2 ms slower: real, but below 5 ms
    result = judge_metric(P50, baseline, canary)
    assert result.p is not None
    assert result.p < 0.05
    assert result.verdict == "pass"
    assert result.tolerance == pytest.approx(0.005)
    strict = judge_metric(MetricRule("latency-p50", tolerance=0.0), baseline, canary)
    assert strict.verdict == "fail"


def test_relative_tolerance_scales_with_the_baseline() -> None:
    baseline = [1.0 + 0.01 * i for i in range(20)]
    canary = [value + 0.08 for value in baseline]  # 8 % higher: inside 10 %
    assert judge_metric(MetricRule("m"), baseline, canary).verdict == "pass"
    canary = [value + 0.15 for value in baseline]  # 15 % higher: outside
    result = judge_metric(MetricRule("m"), baseline, canary)
    assert result.verdict == "fail"
    assert result.tolerance == pytest.approx(0.1 * float(np.median(baseline)))


def test_hodges_lehmann_is_the_median_of_pairwise_differences() -> None:
    assert hodges_lehmann([1.0, 2.0, 3.0], [11.0, 12.0, 13.0]) == 10.0
    # Robust: one wild value in the canary does not move it much, unlike the mean.
    assert hodges_lehmann([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 1000.0]) == 0.0  # mean: +249


def test_too_few_values_is_nodata_and_left_out_of_the_score() -> None:
    report = judge(
        [
            (MetricRule("a"), [1.0, 2.0], [1.0, 2.0, 3.0]),
            (MetricRule("b"), [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]),
        ]
    )
    assert [m.verdict for m in report.metrics] == ["nodata", "pass"]
    assert report.score == 100.0
    assert report.verdict == "pass"


def test_nan_steps_are_dropped() -> None:
    result = judge_metric(MetricRule("a"), [math.nan, 1.0, 1.0, 1.0], [1.0, math.nan, 1.0, 1.0])
    assert result.baseline.count == 3
    assert result.canary.count == 3
    assert result.verdict == "pass"
    assert result.p == 1.0


def test_no_data_at_all_is_marginal_for_a_person_to_decide() -> None:
    report = judge([(MetricRule("a"), [], []), (MetricRule("b"), [math.nan] * 5, [1.0])])
    assert report.verdict == "marginal"
    assert report.score == 0.0
    assert "no metric" in report.reason


@pytest.mark.parametrize(
    ("passing", "verdict"),
    [(10, "pass"), (9, "marginal"), (8, "marginal"), (7, "fail")],
)
def test_score_thresholds(passing: int, verdict: str) -> None:
    same = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    worse = [v + 100 for v in same]
    series = [(MetricRule(f"m{i}"), same, same if i < passing else worse) for i in range(10)]
    report = judge(series, thresholds=Thresholds(pass_=95, marginal=75))
    assert report.score == passing * 10
    assert report.verdict == verdict


def test_a_critical_failure_fails_whatever_the_score() -> None:
    same = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    worse = [v + 100 for v in same]
    series = [(MetricRule(f"m{i}"), same, same) for i in range(19)]
    series.append((MetricRule("errors", critical=True), same, worse))
    report = judge(series)
    assert report.score == 95.0  # would pass on the score alone
    assert report.verdict == "fail"
    assert report.critical_failures == ("errors",)
    series[-1] = (MetricRule("errors", critical=False), same, worse)
    assert judge(series).verdict == "pass"


def test_the_report_round_trips_through_json() -> None:
    report = interval(3, canary_extra=0.1)
    text = json.dumps(report.to_json(), allow_nan=False)  # storable: no NaN anywhere
    back = IntervalReport.from_json(json.loads(text))
    assert back == report
    data = json.loads(text)
    assert data["metrics"][1]["name"] == "latency-p50"
    assert set(data["metrics"][1]) >= {"baseline", "canary", "u", "p", "effect", "verdict"}
    assert data["thresholds"] == {"pass": 95.0, "marginal": 75.0}
    # The values judged are kept: the report can be checked, or judged again.
    first = data["metrics"][0]
    assert len(first["canary"]["values"]) == first["canary"]["count"] == STEPS
    assert judge_metric(ERRORS, first["baseline"]["values"], first["canary"]["values"]).p == (
        report.metrics[0].p
    )


def test_early_looks_rarely_fail_a_good_canary_and_catch_5_percent_errors() -> None:
    """The canary strategy's early looks (within an interval, critical metrics alone, at
    ``EARLY_ALPHA``): on good-against-good error rates at 8, 10 and 15 values a group, 400
    runs each, at most 0.5 % of looks fail; 5 % errors against none are caught from 10 values."""
    from klink.deploy.actions.canary import EARLY_ALPHA, EARLY_MIN_VALUES

    looks = (EARLY_MIN_VALUES, 10, 15)
    failed = 0
    for seed in range(RUNS):
        rng = np.random.default_rng(30_000 + seed)
        base, canary = error_rates(rng, 0.002), error_rates(rng, 0.002)
        for n in looks:
            report = judge([(ERRORS, base[:n], canary[:n])], alpha=EARLY_ALPHA)
            failed += bool(report.critical_failures)
    assert failed / (RUNS * len(looks)) <= 0.005, failed
    caught = 0
    for seed in range(100):
        rng = np.random.default_rng(40_000 + seed)
        report = judge([(ERRORS, [0.0] * 10, error_rates(rng, 0.05)[:10])], alpha=EARLY_ALPHA)
        caught += report.critical_failures == ("error-rate",)
    assert caught >= 95, caught
