"""Canary analysis: metric series per deployment group, judged by statistics.

- ``sources``: the one small interface, ``MetricSource.series(metric, group, start, end,
  step)`` → one value per step, and ``analyse`` (one interval: every metric, both groups,
  judged);
- ``prometheus``: a source over Prometheus's HTTP API (``query_range``), with the built-in
  queries over HAProxy's exporter (local provider);
- ``cloudwatch``: a source over the provider's ``metric_data`` (CloudWatch ``GetMetricData``
  on aws; boto3 stays in ``providers/aws``);
- ``factory``: ``source_for(provider, prometheus_url=…)``, the source a canary reads: an
  environment's own Prometheus, else the provider's (local: the daemon's, ``Provider.prometheus``),
  else CloudWatch on aws;
- ``builtin_metrics``: what ``error-rate``, ``latency-p50`` and ``latency-p99`` mean;
- ``servers``: the group-name check that every query's ``$group`` goes through;
- ``judge``: Mann-Whitney U, Hodges-Lehmann effect, verdicts, score, the JSON report.

The ``canary`` strategy (``deploy/strategies``) runs the intervals and acts on the verdicts.
"""
