"""What the built-in metrics mean on each kind of source, so that a canary with no query of its
own still judges errors and latency.

- ``error-rate``: local, 5xx responses / all responses per step; aws,
  HTTPCode_Target_5XX_Count / RequestCount;
- ``latency-p50``: local, the median over the step of the servers' mean response time; aws,
  TargetResponseTime p50;
- ``latency-p99``: local, the 99th percentile of the same; aws, TargetResponseTime p99.

HAProxy 2.6's exporter has no latency histogram: per server it gives the mean response time of
its last 1024 responses (millisecond resolution). The local latency builtins are therefore the
quantiles, over each step, of that mean (sampled every scrape, idle servers left out): not
request percentiles, but they move with them when a version is slower. On aws they are real
request percentiles. ``MIN_EFFECT`` is each builtin's default absolute tolerance: one point of
error rate, 5 ms and 10 ms of latency, below which a difference fails no canary.
"""

from __future__ import annotations

# Default minimum effect (absolute, in the metric's unit) per builtin.
MIN_EFFECT = {"error-rate": 0.01, "latency-p50": 0.005, "latency-p99": 0.010}

# PromQL over HAProxy's exporter as the local cloud's daemon serves it: every server series
# carries the ``group`` its slot serves for at scrape time (``providers/local/metrics.py``).
# ``$group`` is the group, ``$step`` the step as a duration (rates over one step: windows that do
# not overlap, so consecutive values are not correlated by construction), ``$scrape`` the scrape
# interval (the subqueries' resolution: one sample per scrape, whatever the server's evaluation
# interval).
_ERRORS = 'haproxy_server_http_responses_total{group="$group",code="5xx"}'
_RESPONSES = 'haproxy_server_http_responses_total{group="$group"}'
_MEAN_TIME = 'haproxy_server_response_time_average_seconds{group="$group"} > 0'
PROMQL = {
    "error-rate": f"sum(rate({_ERRORS}[$step])) / sum(rate({_RESPONSES}[$step]))",
    "latency-p50": f"quantile_over_time(0.5, (avg({_MEAN_TIME}))[$step:$scrape])",
    "latency-p99": f"quantile_over_time(0.99, (max({_MEAN_TIME}))[$step:$scrape])",
}

# CloudWatch: (namespace, metric, statistic) per builtin; error-rate is a ratio of two.
ELB_NAMESPACE = "AWS/ApplicationELB"
ELB_5XX = "HTTPCode_Target_5XX_Count"
ELB_REQUESTS = "RequestCount"
ELB_RESPONSE_TIME = "TargetResponseTime"
CLOUDWATCH_LATENCY = {"latency-p50": "p50", "latency-p99": "p99"}
