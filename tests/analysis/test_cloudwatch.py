"""CloudWatch through the provider: GetMetricData against moto's server, with data the test puts
in with PutMetricData under ELBv2's own dimensions for two target groups behind one ALB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from klink.analysis.cloudwatch import CloudWatchSource, parse_query
from klink.analysis.sources import analyse
from klink.config.canary import CanaryMetric, CanaryParams
from klink.errors import InvalidInput, NotFound, ProviderError
from klink.providers.aws import AwsProvider
from klink.providers.aws.metrics import target_group_dimensions
from klink.providers.base import MetricQuery, Provider, TargetGroupSpec
from klink.testing.fake_provider import FakeProvider

BASELINE, CANARY = "hello-prod-v001", "hello-prod-v002"
MINUTES = 10


@pytest.fixture
def cloud(provider: AwsProvider, subnet: dict[str, str], ec2: Any, elbv2: Any) -> dict[str, Any]:
    """Two target groups (baseline, canary) behind one ALB, weighted 50/50."""
    groups = {
        name: provider.ensure_target_group(
            TargetGroupSpec(name=name, port=8080, vpc_id=subnet["vpc"])
        )
        for name in (BASELINE, CANARY)
    }
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [subnet["vpc"]]}])
    balancer = elbv2.create_load_balancer(
        Name="hello-prod", Subnets=[s["SubnetId"] for s in subnets["Subnets"][:2]]
    )["LoadBalancers"][0]
    elbv2.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": tg.id, "Weight": 50} for tg in groups.values()
                    ]
                },
            }
        ],
    )
    dims = {
        name: target_group_dimensions(tg.id, balancer["LoadBalancerArn"])
        for name, tg in groups.items()
    }
    return {"dims": dims, "balancer": balancer}


def put(moto: str, dims: dict[str, str], metric: str, points: list[tuple[datetime, float]]) -> None:
    cloudwatch = boto3.client("cloudwatch", endpoint_url=moto, region_name="us-east-1")
    cloudwatch.put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {
                "MetricName": metric,
                # Sorted by name as Klink asks for them: moto 5.2.5 matches dimensions in
                # order (its Dimension.__lt__ is broken), CloudWatch in any order.
                "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dims.items())],
                "Timestamp": when,
                "Value": value,
            }
            for when, value in points
        ],
    )


def minutes(start: datetime) -> list[datetime]:
    return [start + timedelta(minutes=i, seconds=30) for i in range(MINUTES)]


@pytest.fixture
def start() -> datetime:
    return (datetime.now(UTC) - timedelta(minutes=MINUTES + 1)).replace(second=0, microsecond=0)


def test_dimensions_are_the_arns_resource_parts() -> None:
    dims = target_group_dimensions(
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188",
    )
    assert dims == {
        "TargetGroup": "targetgroup/web/73e2d6bc24d8a067",
        "LoadBalancer": "app/web/50dc6c495c0c9188",
    }


def test_metric_data_selects_a_target_group_by_its_klink_name(
    provider: AwsProvider, cloud: dict[str, Any], moto: str, start: datetime
) -> None:
    stamps = minutes(start)
    put(moto, cloud["dims"][BASELINE], "RequestCount", [(t, 100.0) for t in stamps])
    put(moto, cloud["dims"][CANARY], "RequestCount", [(t, 7.0) for t in stamps])
    query = MetricQuery(
        id="requests",
        namespace="AWS/ApplicationELB",
        metric_name="RequestCount",
        statistic="Sum",
        period=60,
        target_group=CANARY,
    )
    series = provider.metric_data([query], start, start + timedelta(minutes=MINUTES))
    values = [value for _when, value in series["requests"].points]
    assert values == [7.0] * MINUTES  # the canary's only, one value per minute
    whens = [when for when, _value in series["requests"].points]
    assert whens == sorted(whens)
    assert whens[0] == start


def test_error_rate_builtin_counts_missing_5xx_periods_as_zero(
    provider: AwsProvider, cloud: dict[str, Any], moto: str, start: datetime
) -> None:
    stamps = minutes(start)
    for group in (BASELINE, CANARY):
        put(moto, cloud["dims"][group], "RequestCount", [(t, 200.0) for t in stamps])
    # The canary answers 5 % with 500 in every minute but the first; the baseline never does,
    # so CloudWatch has no HTTPCode_Target_5XX_Count datapoint for it at all.
    put(moto, cloud["dims"][CANARY], "HTTPCode_Target_5XX_Count", [(t, 10.0) for t in stamps[1:]])
    source = CloudWatchSource(provider)
    metric = CanaryMetric(name="error-rate", builtin="error-rate", critical=True)
    end = start + timedelta(minutes=MINUTES)
    assert source.series(metric, BASELINE, start, end, 60) == [0.0] * MINUTES
    assert source.series(metric, CANARY, start, end, 60) == [0.0] + [0.05] * (MINUTES - 1)


def test_a_canary_with_errors_fails_on_cloudwatch_data(
    provider: AwsProvider, cloud: dict[str, Any], moto: str, start: datetime
) -> None:
    stamps = minutes(start)
    for group in (BASELINE, CANARY):
        put(moto, cloud["dims"][group], "RequestCount", [(t, 200.0) for t in stamps])
    put(moto, cloud["dims"][CANARY], "HTTPCode_Target_5XX_Count", [(t, 10.0) for t in stamps])
    canary = CanaryParams.model_validate(
        {
            "intervalSeconds": MINUTES * 60,
            "metrics": [
                {"name": "error-rate", "builtin": "error-rate", "critical": True},
                {
                    "name": "client-errors",
                    "query": "AWS/ApplicationELB HTTPCode_Target_4XX_Count Sum",
                },
            ],
        }
    )
    report = analyse(
        CloudWatchSource(provider),
        canary,
        baseline=BASELINE,
        canary_group=CANARY,
        start=start,
        end=start + timedelta(minutes=MINUTES),
    )
    assert report.verdict == "fail"
    assert report.critical_failures == ("error-rate",)
    errors = report.metrics[0]
    assert (errors.baseline.count, errors.canary.count) == (MINUTES, MINUTES)
    assert errors.effect == pytest.approx(0.05)
    assert report.metrics[1].verdict == "nodata"  # no 4xx datapoints were put


def test_a_custom_query_with_its_own_dimensions(
    provider: AwsProvider, cloud: dict[str, Any], moto: str, start: datetime
) -> None:
    cloudwatch = boto3.client("cloudwatch", endpoint_url=moto, region_name="us-east-1")
    for group, value in ((BASELINE, 3.0), (CANARY, 9.0)):
        cloudwatch.put_metric_data(
            Namespace="Hello",
            MetricData=[
                {
                    "MetricName": "Orders",
                    "Dimensions": [{"Name": "AutoScalingGroupName", "Value": group}],
                    "Timestamp": when,
                    "Value": value,
                }
                for when in minutes(start)
            ],
        )
    metric = CanaryMetric(name="orders", query="Hello Orders Sum AutoScalingGroupName=$group")
    end = start + timedelta(minutes=MINUTES)
    assert CloudWatchSource(provider).series(metric, CANARY, start, end, 60) == [9.0] * MINUTES


def test_latency_builtins_ask_cloudwatch_for_percentiles() -> None:
    # moto computes no percentile statistics (p50, p99), so the request is what is checked here,
    # through the fake provider's record of its metric_data calls.
    fake = FakeProvider()
    source = CloudWatchSource(fake, target_group_of=lambda group: f"tg-{group}")
    now = datetime.now(UTC)
    metric = CanaryMetric(name="latency-p99", builtin="latency-p99")
    assert source.series(metric, CANARY, now - timedelta(minutes=5), now, 60) == []
    (queries,) = fake.metric_queries
    assert [(q.metric_name, q.statistic, q.target_group, q.period) for q in queries] == [
        ("TargetResponseTime", "p99", f"tg-{CANARY}", 60)
    ]


def test_a_target_group_behind_no_balancer_has_no_metrics(
    provider: AwsProvider, subnet: dict[str, str], start: datetime
) -> None:
    provider.ensure_target_group(TargetGroupSpec(name="alone", port=80, vpc_id=subnet["vpc"]))
    query = MetricQuery("m", "AWS/ApplicationELB", "RequestCount", "Sum", 60, target_group="alone")
    with pytest.raises(NotFound) as info:
        provider.metric_data([query], start, start + timedelta(minutes=5))
    assert "alone" in info.value.message
    with pytest.raises(NotFound):
        provider.metric_data(
            [MetricQuery("m", "X", "Y", "Sum", 60, target_group="missing")],
            start,
            start + timedelta(minutes=5),
        )


def test_bad_queries_are_refused_before_any_call(provider: AwsProvider, start: datetime) -> None:
    with pytest.raises(InvalidInput):
        provider.metric_data([MetricQuery("Bad-Id", "X", "Y", "Sum", 60)], start, start)
    for text, words in [
        ("Hello Orders", "Namespace MetricName Statistic"),
        ("Hello Orders Median", "statistic 'Median'"),
        ("Hello Orders p100", "statistic 'p100'"),
        ("Hello Orders Sum Group", "not Name=Value"),
    ]:
        with pytest.raises(InvalidInput) as info:
            parse_query(text)
        assert words in info.value.message
        assert info.value.field == "query"
    assert parse_query("Hello Orders p99.9 A=b").statistic == "p99.9"


def test_a_provider_without_metrics_says_so() -> None:
    # The interface's default, which the local provider keeps (its metrics are Prometheus's).
    with pytest.raises(ProviderError) as info:
        Provider.metric_data(FakeProvider(), [], datetime.now(UTC), datetime.now(UTC))
    assert info.value.code == "unsupported"


def test_the_fake_cloudwatch_gives_back_what_was_put(start: datetime) -> None:
    fake = FakeProvider()
    stamps = minutes(start)
    fake.put_metric("RequestCount", "Sum", [(t, 100.0) for t in stamps], target_group=CANARY)
    fake.put_metric("HTTPCode_Target_5XX_Count", "Sum", [(stamps[2], 5.0)], target_group=CANARY)
    metric = CanaryMetric(name="error-rate", builtin="error-rate")
    end = start + timedelta(minutes=MINUTES)
    values = CloudWatchSource(fake).series(metric, CANARY, start, end, 60)
    assert values == [0.0, 0.0, 0.05] + [0.0] * (MINUTES - 3)
    assert CloudWatchSource(fake).series(metric, BASELINE, start, end, 60) == []
