"""What the built-in metrics mean on each kind of source, so that a canary with no query of its
own still judges errors and latency.

- ``error-rate``: local, 5xx responses / all responses per step; aws,
  HTTPCode_Target_5XX_Count / RequestCount;
- ``latency-p50``: local and aws, the median response time of the requests in each step
  (local: ``klink_local_response_seconds``, the daemon's histogram by group from HAProxy's
  request log, through ``histogram_quantile``; aws: TargetResponseTime p50);
- ``latency-p99``: the same at the 99th percentile.

On local the percentiles are estimated within the histogram's buckets (a few ms wide where
local services answer), and they are the group's own: counted by group, not by HAProxy server
slot, so a group given a slot that another group left does not inherit its times.
``MIN_EFFECT`` is each builtin's default absolute tolerance: one point of error rate, 5 ms and
10 ms of latency, below which a difference fails no canary.
"""

from __future__ import annotations

# Default minimum effect (absolute, in the metric's unit) per builtin.
MIN_EFFECT = {"error-rate": 0.01, "latency-p50": 0.005, "latency-p99": 0.010}

# PromQL over the local cloud daemon's /metrics: HAProxy's server series, each with the
# ``group`` its slot serves for at scrape time (``providers/local/metrics.py``), and the
# response-time histogram by group (``providers/local/latency.py``). ``$group`` is the group,
# ``$step`` the step as a duration (rates over one step: windows that do not overlap, so
# consecutive values are not correlated by construction).
_ERRORS = 'haproxy_server_http_responses_total{group="$group",code="5xx"}'
_RESPONSES = 'haproxy_server_http_responses_total{group="$group"}'
_TIMES = 'sum by (le) (rate(klink_local_response_seconds_bucket{group="$group"}[$step]))'
PROMQL = {
    "error-rate": f"sum(rate({_ERRORS}[$step])) / sum(rate({_RESPONSES}[$step]))",
    "latency-p50": f"histogram_quantile(0.5, {_TIMES})",
    "latency-p99": f"histogram_quantile(0.99, {_TIMES})",
}

# CloudWatch: (namespace, metric, statistic) per builtin; error-rate is a ratio of two.
ELB_NAMESPACE = "AWS/ApplicationELB"
ELB_5XX = "HTTPCode_Target_5XX_Count"
ELB_REQUESTS = "RequestCount"
ELB_RESPONSE_TIME = "TargetResponseTime"
CLOUDWATCH_LATENCY = {"latency-p50": "p50", "latency-p99": "p99"}
