"""Retries under injected throttling and 5xx: one layer (botocore's), bounded, jittered, then a
clean Throttled; quotas are not conflicts and are not retried."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from klink.errors import NotFound, QuotaExceeded, Throttled
from klink.providers.aws import AwsProvider
from tests.aws.conftest import Sleeps
from tests.aws.faults import CallRecorder, FaultInjector

pytestmark = pytest.mark.slow


def test_calls_succeed_through_a_fraction_of_throttled_answers(
    make_provider: Callable[..., AwsProvider], sleeps: Sleeps
) -> None:
    provider = make_provider(aws_retries={"max_attempts": 8})
    faults = FaultInjector(fraction=0.4, operations=frozenset({"DescribeAutoScalingGroups"}))
    faults.attach(provider.session)
    recorder = CallRecorder().attach(provider.session)
    for _ in range(12):
        assert provider.list_groups() == []
    assert faults.injected > 0  # some attempts really were throttled…
    assert faults.passed == 12  # …and each list reached the server exactly once
    assert recorder.calls["DescribeAutoScalingGroups"] == 12 + faults.injected
    assert len(sleeps.calls) == faults.injected  # one backoff per throttled answer
    assert all(0 <= s <= 20.0 for s in sleeps.calls)


def test_throttling_that_never_stops_surfaces_as_throttled_after_bounded_attempts(
    make_provider: Callable[..., AwsProvider], sleeps: Sleeps
) -> None:
    provider = make_provider(aws_retries={"max_attempts": 4})
    faults = FaultInjector(fraction=1.0).attach(provider.session)
    with pytest.raises(Throttled) as caught:
        provider.describe_group("web-prod-v001")
    assert faults.injected == 4
    assert len(sleeps.calls) == 3  # between attempts, not after the last
    assert "describe group web-prod-v001" in caught.value.message
    assert "Rate exceeded" in caught.value.message
    assert caught.value.status == 503
    assert caught.value.to_json()["error"]["code"] == "throttled"


def test_there_is_one_retry_layer(
    make_provider: Callable[..., AwsProvider], sleeps: Sleeps
) -> None:
    # One attempt configured is one attempt made: nothing loops around botocore's retries.
    provider = make_provider(aws_retries={"max_attempts": 1})
    faults = FaultInjector(fraction=1.0).attach(provider.session)
    with pytest.raises(Throttled):
        provider.describe_group("web-prod-v001")
    assert faults.injected == 1
    assert sleeps.calls == []
    # An old record's backoff_attempts (the second loop's) is accepted and changes nothing.
    old = make_provider(aws_retries={"max_attempts": 2, "backoff_attempts": 10})
    faults = FaultInjector(fraction=1.0).attach(old.session)
    with pytest.raises(Throttled):
        old.describe_group("web-prod-v001")
    assert faults.injected == 2


def test_ec2_throttling_code_is_recognised(
    make_provider: Callable[..., AwsProvider], sleeps: Sleeps
) -> None:
    provider = make_provider(aws_retries={"max_attempts": 2})
    FaultInjector(fraction=1.0).attach(provider.session)
    with pytest.raises(Throttled, match="Rate exceeded"):
        provider.subnets()
    assert len(sleeps.calls) == 1


def test_server_errors_are_retried_like_throttling(
    make_provider: Callable[..., AwsProvider], sleeps: Sleeps
) -> None:
    provider = make_provider(aws_retries={"max_attempts": 6})
    faults = FaultInjector(fraction=0.5, kind="5xx", seed=3).attach(provider.session)
    for _ in range(6):
        assert provider.group_exists("web-prod-v001") is False
    assert faults.injected > 0
    assert len(sleeps.calls) == faults.injected

    failing = make_provider(aws_retries={"max_attempts": 3})
    FaultInjector(fraction=1.0, kind="5xx").attach(failing.session)
    with pytest.raises(Throttled, match="Service is unavailable"):
        failing.group_exists("web-prod-v001")


def test_errors_that_are_not_transient_are_not_retried(
    provider: AwsProvider, sleeps: Sleeps
) -> None:
    with pytest.raises(NotFound):
        provider.describe_target_group("nothing-here")
    assert sleeps.calls == []


@pytest.mark.parametrize("operation", ["DescribeAutoScalingGroups", "DescribeSubnets"])
def test_a_limit_exceeded_is_a_quota_error_not_a_conflict(
    make_provider: Callable[..., AwsProvider], sleeps: Sleeps, operation: str
) -> None:
    provider = make_provider()
    faults = FaultInjector(fraction=1.0, kind="quota", operations=frozenset({operation}))
    faults.attach(provider.session)
    calls: dict[str, Callable[[], object]] = {
        "DescribeSubnets": provider.subnets,
        "DescribeAutoScalingGroups": lambda: provider.describe_group("web-prod-v001"),
    }
    with pytest.raises(QuotaExceeded) as caught:
        calls[operation]()
    assert "You have reached your quota" in caught.value.message
    assert caught.value.status == 429
    assert caught.value.code == "quota_exceeded"
    assert faults.injected == 1  # a quota is not retried
    assert sleeps.calls == []


def test_backoff_is_jittered_exponential_and_capped(
    make_provider: Callable[..., AwsProvider], sleeps: Sleeps
) -> None:
    provider = make_provider(aws_retries={"max_attempts": 12})
    FaultInjector(fraction=1.0).attach(provider.session)
    for _ in range(3):
        with pytest.raises(Throttled):
            provider.list_groups()
    assert len(sleeps.calls) == 3 * 11
    for index, delay in enumerate(sleeps.calls):
        attempt = index % 11  # botocore: uniform(0, 1) * 2**attempt, capped at 20 s
        assert 0 <= delay <= min(20.0, 2**attempt)
    assert len(set(sleeps.calls)) > 1  # jittered, so many callers do not retry in step
