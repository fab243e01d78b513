"""CloudWatch ``GetMetricData``: metric series for the canary's analysis.

Queries name target groups by Klink's names; here they become the ``TargetGroup`` and
``LoadBalancer`` dimensions ELBv2 publishes under (``targetgroup/NAME/ID`` and
``app/NAME/ID``, the ARNs' resource parts). A target group behind no load balancer has no
metrics: ``NotFound`` naming it. At most 500 queries go in one call (CloudWatch's limit) and
every page (``NextToken``) is read; each call goes through ``AwsSession.call`` (retries,
error translation). Values come back oldest first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from klink.errors import InvalidInput, NotFound
from klink.providers.aws.convert import chunks, forward_of, parse_time
from klink.providers.aws.session import AwsSession
from klink.providers.aws.targets import Targets
from klink.providers.base import MetricQuery, MetricSeries

MAX_QUERIES = 500  # per GetMetricData call
_ID = re.compile(r"^[a-z][a-zA-Z0-9_]{0,254}$")


def target_group_dimensions(target_group_arn: str, load_balancer_arn: str) -> dict[str, str]:
    """ELBv2's CloudWatch dimensions of one target group behind one load balancer."""
    return {
        "TargetGroup": target_group_arn.rpartition(":")[2],
        "LoadBalancer": load_balancer_arn.partition(":loadbalancer/")[2],
    }


def metric_data_query(query: MetricQuery, dimensions: dict[str, str]) -> dict[str, Any]:
    if not _ID.match(query.id):
        raise InvalidInput(
            f"metric query id {query.id!r} must start with a lowercase letter", field="id"
        )
    if query.period < 1:
        raise InvalidInput("a metric query's period must be at least 1 second", field="period")
    return {
        "Id": query.id,
        "MetricStat": {
            "Metric": {
                "Namespace": query.namespace,
                "MetricName": query.metric_name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dimensions.items())],
            },
            "Period": query.period,
            "Stat": query.statistic,
        },
        "ReturnData": True,
    }


class Metrics:
    def __init__(self, session: AwsSession, targets: Targets) -> None:
        self.session = session
        self.targets = targets

    def _dimensions(self, query: MetricQuery, cache: dict[str, dict[str, str]]) -> dict[str, str]:
        dims = dict(query.dimensions)
        if query.target_group is not None:
            if query.target_group not in cache:
                tg = self.targets.describe(query.target_group)
                balancer = tg.load_balancers[0] if tg.load_balancers else self._forwarding(tg.id)
                if balancer is None:
                    raise NotFound(
                        f"target group {query.target_group} is behind no load balancer,"
                        " so it has no metrics",
                        field="target_group",
                    )
                cache[query.target_group] = target_group_dimensions(tg.id, balancer)
            dims.update(cache[query.target_group])
        return dims

    def _forwarding(self, target_group_arn: str) -> str | None:
        """The balancer whose listener forwards to a target group by weight. A deployment
        group's own target group is a member of a weighted forward; ELBv2 lists the balancer
        among the target group's ``LoadBalancerArns``, moto does not."""
        elb = self.session.client("elbv2")

        def run() -> str | None:
            for page in elb.get_paginator("describe_load_balancers").paginate():
                for balancer in page["LoadBalancers"]:
                    arn = balancer["LoadBalancerArn"]
                    pages = elb.get_paginator("describe_listeners").paginate(LoadBalancerArn=arn)
                    for listener in (x for p in pages for x in p["Listeners"]):
                        if target_group_arn in (forward_of(listener) or {}):
                            return str(arn)
            return None

        return self.session.call(f"find the balancer of {target_group_arn}", run)

    def data(
        self, queries: Sequence[MetricQuery], start: datetime, end: datetime
    ) -> dict[str, MetricSeries]:
        cache: dict[str, dict[str, str]] = {}
        requests = [metric_data_query(q, self._dimensions(q, cache)) for q in queries]
        points: dict[str, list[tuple[datetime, float]]] = {q.id: [] for q in queries}
        cloudwatch = self.session.client("cloudwatch")
        for batch in chunks(requests, MAX_QUERIES):
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {
                    "MetricDataQueries": list(batch),
                    "StartTime": start,
                    "EndTime": end,
                    "ScanBy": "TimestampAscending",
                }
                if token:
                    kwargs["NextToken"] = token

                def run(kwargs: dict[str, Any] = kwargs) -> Any:
                    return cloudwatch.get_metric_data(**kwargs)

                answer = self.session.call("get metric data", run)
                for result in answer.get("MetricDataResults", ()):
                    for stamp, value in zip(
                        result.get("Timestamps", ()), result.get("Values", ()), strict=False
                    ):
                        when = parse_time(stamp)
                        if when is not None and value is not None:
                            points[result["Id"]].append((when, float(value)))
                token = answer.get("NextToken")
                if not token:
                    break
        return {
            qid: MetricSeries(id=qid, points=tuple(sorted(values)))
            for qid, values in points.items()
        }
