"""The quickstart's canary: a version that answers 5 % of requests with 500, caught and undone.

After the undo, the version in service is the first one. The config is changed (with plain git,
as a user would) to ``strategy: canary`` (canary and baseline at 25 % each, 2 intervals of 15 s)
and to properties that make ``examples/hello`` answer one request in twenty with 500
(``fault.errorRate``); the second image is deployed while a load generator sends requests to
``/`` through HAProxy. The canary's analysis (the local cloud's Prometheus, scraping HAProxy)
fails the critical error rate at its first judgement and the deployment is undone by itself.
The config is then put back (red-black, no fault). The figures: the judgement, the requests
sent and failed, and weight x error rate x requests during the canary.
"""

from __future__ import annotations

from klink.cli.loadgen import LoadGenerator
from klink.cli.quickstart_steps import (
    APP,
    ENV,
    Platform,
    change_config,
    edit_json,
    follow,
    plain_params,
    plain_props,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any

    from klink.cli.api import Api

WEIGHT, ERROR_RATE = 25, 0.05
CANARY = {"weight": WEIGHT, "intervals": 2, "intervalSeconds": 15}


def _faulty(work: Path) -> None:
    def params(data: dict[str, Any]) -> None:
        plain_params(data)
        data.update({"strategy": "canary", "canary": CANARY})

    def props(data: dict[str, Any]) -> None:
        plain_props(data)
        data["fault.errorRate"] = ERROR_RATE

    edit_json(work / "deployment-params.json", params)
    edit_json(work / "application-properties.json", props)


def _plain(work: Path) -> None:
    edit_json(work / "deployment-params.json", plain_params)
    edit_json(work / "application-properties.json", plain_props)


def run(
    client: Api,
    platform: Platform,
    balancer: str,
    image: str,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    message = "strategy canary, and a fault: 5 % of answers are 500 (fault.errorRate)"
    change_config(client, platform, _faulty, message, progress)
    try:
        progress(f"klink deploy {APP} {ENV} {image} -m 'canary', under load through {balancer}")
        with LoadGenerator(f"{balancer}/", threads=4, max_seconds=600) as load:
            deployment = client.call(
                "POST", f"/deploy/{APP}/{ENV}", json={"image": image, "message": "canary"}
            )
            status = follow(client, deployment["id"], progress)
    finally:
        change_config(client, platform, _plain, "config back: red-black, no fault", progress)
    assert load.result is not None
    record = client.call("GET", f"/deploy/deployments/{deployment['id']}")
    canary = client.call("GET", f"/deploy/deployments/{deployment['id']}/canary")
    judged = canary["reports"][-1] if canary["reports"] else {}
    return {
        "deployment": deployment["id"],
        "status": status,
        "undone": bool(record["undo"]),
        "verdict": canary["verdict"],
        "intervals_judged": len(canary["reports"]),
        "critical_failures": judged.get("criticalFailures", []),
        "weight": WEIGHT,
        "error_rate": ERROR_RATE,
        "requests": load.result.sent,
        "failed": load.result.failed,
    }
