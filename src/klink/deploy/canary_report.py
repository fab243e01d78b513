"""A deployment's canary, as the API, ``klink watch`` and the web UI show it.

``canary_of(d)`` reads what the canary actions stored with the deployment (the baseline group
and every judged interval's report, ``actions/canary.py``) and gives the groups, the settings,
the reports and one overall verdict: ``fail`` when an interval failed, ``pass`` when every
interval passed, ``marginal`` when the last judged interval was marginal, else ``running``.
With ``values=False`` the reports drop the series themselves (the summaries stay).
"""

from __future__ import annotations

from typing import Any

from klink.config.canary import CanaryParams
from klink.deploy.model import Deployment


def _without_values(report: dict[str, Any]) -> dict[str, Any]:
    metrics = []
    for metric in report.get("metrics") or []:
        metric = dict(metric)
        for side in ("baseline", "canary"):
            if isinstance(metric.get(side), dict):
                metric[side] = {k: v for k, v in metric[side].items() if k != "values"}
        metrics.append(metric)
    return {**report, "metrics": metrics}


def verdict_of(reports: list[dict[str, Any]], intervals: int) -> str:
    verdicts = [r.get("verdict") for r in reports]
    if "fail" in verdicts:
        return "fail"
    if verdicts and verdicts[-1] == "marginal":
        return "marginal"
    if len(verdicts) >= intervals and all(v in ("pass", "marginal") for v in verdicts):
        return "pass"
    return "running"


def canary_of(d: Deployment, *, values: bool = True) -> dict[str, Any] | None:
    baseline = d.facts.get("baseline")
    reports = [dict(r) for r in d.facts.get("canary_reports") or []]
    if not baseline and not reports:
        return None
    params = (d.facts.get("params") or {}).get("canary")
    settings = CanaryParams.model_validate(params or {})
    new = d.new_state or {}
    return {
        "canary": new.get("name"),
        "baseline": (baseline or {}).get("name"),
        "weight": settings.weight,
        "instances": settings.instances,
        "intervals": settings.intervals,
        "intervalSeconds": settings.interval_seconds,
        "thresholds": {"pass": settings.thresholds.pass_, "marginal": settings.thresholds.marginal},
        "verdict": verdict_of(reports, settings.intervals),
        "reports": reports if values else [_without_values(r) for r in reports],
    }
