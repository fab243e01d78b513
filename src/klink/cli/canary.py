"""``klink canary ID``: a canary's judgements, interval by interval, metric by metric.

The same rendering serves ``klink watch``, which prints an interval's table as soon as its
judgement is logged, so a person following a canary sees each metric's medians, effect, p-value
and verdict live. The numbers come from ``GET /deploy/deployments/ID/canary``.
"""

from __future__ import annotations

from klink.cli.api import Api
from klink.cli.output import emit_json, say, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from klink.cli.parse import Args


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def interval_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for metric in report.get("metrics") or []:
        name = metric["name"] + (" (critical)" if metric.get("critical") else "")
        rows.append(
            [
                name,
                _number((metric.get("baseline") or {}).get("median")),
                _number((metric.get("canary") or {}).get("median")),
                _number(metric.get("effect")),
                _number(metric.get("tolerance")),
                _number(metric.get("p")),
                metric.get("verdict") or "-",
            ]
        )
    return rows


def show_interval(report: dict[str, Any], intervals: int) -> None:
    say(
        f"interval {report['interval']}/{intervals} ({(report.get('start') or '')[11:19]}-"
        f"{(report.get('end') or '')[11:19]}): {report['verdict']}, score "
        f"{report['score']:.3g}" + (f" ({report['reason']})" if report.get("reason") else "")
    )
    table(
        ["metric", "baseline", "canary", "effect", "tolerance", "p", "verdict"],
        interval_rows(report),
    )


def show(found: dict[str, Any]) -> None:
    say(
        f"canary {found['canary']} against baseline {found['baseline']}, "
        f"{found['weight']}% each, {found['intervals']} x {found['intervalSeconds']} s: "
        f"{found['verdict']}"
    )
    for report in found["reports"]:
        show_interval(report, found["intervals"])


def fetch(client: Api, deployment_id: str) -> dict[str, Any]:
    found: dict[str, Any] = client.call("GET", f"/deploy/deployments/{deployment_id}/canary")
    return found


def _canary(args: Args) -> int:
    from klink.cli.api import client_for

    found = fetch(client_for(args), args.id)
    if args.json:
        emit_json(found)
    else:
        show(found)
    return 0
