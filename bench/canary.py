"""A bad canary's cost: time from its start to its undo, and the requests failed meanwhile, at
canary weights 5, 10 and 25, through the whole platform on the local provider under load.

Each round, for each weight: the version in service runs (``examples/hello`` 1.0); a canary of
the same image with ``fault.errorRate: 0.05`` (one answer in twenty is a 500) is deployed with
``strategy: canary`` (``intervals`` 2 of ``intervalSeconds`` 20, the daemon's Prometheus
scraping every second), while 4 keep-alive clients send requests through HAProxy. The canary
"starts" when ``canary_traffic`` has given it its weight and "ends" when the automatic undo's
``restore_traffic_if_warm`` has put all traffic back on production (task times). Figures: those
seconds, the answers in between, the failed ones, and weight x 5 % x answers (what a canary at
that weight should cost users). The time is mostly the first interval (20 s) plus the judging
lag; the failed requests should be about the expected count and grow with the weight.

    .venv/bin/python bench/canary.py [--rounds 2] [--interval 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.benchkit import load_average, make_image, median, table, write_result
from tests.e2e.canarykit import TimedLoad, run_canary
from tests.e2e.platform import Platform, local_hello, push_config

WEIGHTS = (5, 10, 25)
ERROR_RATE = 0.05


def params(weight: int, interval: int) -> dict[str, Any]:
    return {
        "strategy": "canary",
        "desiredCapacity": 1,
        "max": 1,
        "instanceHealthyAttempts": 60,
        "keepWarmSeconds": 1,
        "healthCheckIntervalSeconds": 0.5,
        "targetGroups": ["hello"],
        "canary": {"weight": weight, "intervals": 2, "intervalSeconds": interval},
    }


def one(
    platform: Platform, balancer: str, image: str, weight: int, interval: int
) -> dict[str, Any]:
    push_config(platform, "hello", "dev", {"deployment-params.json": params(weight, interval)})
    props = platform.call("GET", "/config/repos/hello/dev/files/application-properties.json")
    base = {k: v for k, v in props["data"].items() if not k.startswith("fault.")}
    with TimedLoad(f"{balancer}/", threads=4) as load:
        run = run_canary(
            platform,
            load,
            image,
            {**base, "fault.errorRate": ERROR_RATE},
            weight=weight,
            error_rate=ERROR_RATE,
            timeout=600,
        )
    push_config(platform, "hello", "dev", {"application-properties.json": base})
    if not run.record["undo"] or run.canary["verdict"] != "fail":
        raise SystemExit(f"the bad canary at weight {weight} was not undone: {run.record}")
    return {
        "weight": weight,
        "seconds": round(run.seconds, 2),
        "intervals_judged": len(run.canary["reports"]),
        "requests": run.requests,
        "failed": run.failed,
        "expected_failed": round(run.expected_failed, 1),
        "rate": round(run.requests / run.seconds, 1) if run.seconds else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--interval", type=int, default=20)
    args = parser.parse_args()
    started, loads = datetime.now(UTC), [load_average()]
    runs: dict[int, list[dict[str, Any]]] = {w: [] for w in WEIGHTS}
    with tempfile.TemporaryDirectory(prefix="klink-bench-canary-") as tmp:
        platform = Platform(Path(tmp))
        try:
            platform.start()
            balancer = local_hello(platform, params(WEIGHTS[0], args.interval))
            image = make_image(platform.home, "1.0", Path(tmp) / "images")
            first = platform.wait(platform.deploy("hello", "dev", image, "first"), 300)
            if first["status"] != "completed":
                raise SystemExit(f"first deploy failed: {first['error']}")
            for number in range(args.rounds):
                for weight in WEIGHTS:
                    result = one(platform, balancer, image, weight, args.interval)
                    runs[weight].append(result)
                    loads.append(load_average())
                    print(f"round {number + 1}, weight {weight}: {result}", flush=True)
        finally:
            platform.close()
    rows, figures = [], {}
    for weight in WEIGHTS:
        found = runs[weight]
        figures[str(weight)] = {
            "seconds_median": median([r["seconds"] for r in found]),
            "failed_median": median([float(r["failed"]) for r in found]),
            "expected_median": median([r["expected_failed"] for r in found]),
            "runs": found,
        }
        rows.append(
            [
                f"{weight}%",
                f"{figures[str(weight)]['seconds_median']:.1f} s",
                f"{figures[str(weight)]['failed_median']:.0f}",
                f"{figures[str(weight)]['expected_median']:.1f}",
                "/".join(str(r["requests"]) for r in found),
                "/".join(str(r["intervals_judged"]) for r in found),
            ]
        )
    print(
        table(
            ["weight", "start to undo", "failed", "expected", "requests", "intervals"],
            rows,
        )
    )
    path = write_result(
        "canary",
        {
            "started": started.isoformat(),
            "ended": datetime.now(UTC).isoformat(),
            "load_average": [min(loads), max(loads)],
            "interval_seconds": args.interval,
            "error_rate": ERROR_RATE,
            "weights": figures,
        },
    )
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
