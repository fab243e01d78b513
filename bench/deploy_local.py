"""Local red-black deploy time for 1, 4 and 16 instances, through the whole platform.

``klink serve`` (engine inside) and the local cloud (real processes, HAProxy) run as in
production; each round deploys a new version of ``hello`` at 1, 4 and 16 instances in turn
(interleaved, so machine noise hits every size alike), always over a group of the same size.
Total time is the deployment's ``createdAt`` → ``finishedAt``; it is split, from the task rows
(``GET /deploy/deployments/{id}/tasks``), into time in waiting actions (``wait_*``: instances
exist, in service, healthy, registered, old group drained and gone) and time in every other
action (engine work: provider calls, persistence); the rest is the engine's pick-up and the
gaps between actions. Target: 16 instances <= 1.5x the time of 1.

    .venv/bin/python bench/deploy_local.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.benchkit import (
    load_average,
    make_image,
    median,
    seconds_between,
    set_capacity,
    split_tasks,
    table,
    write_result,
)
from tests.e2e.platform import Platform, local_hello

SIZES = (1, 4, 16)
TARGET = "16 instances <= 1.5x 1 instance"


def deploy_once(platform: Platform, work: Path, size: int, version: str) -> dict[str, Any]:
    set_capacity(platform, size)
    image = make_image(platform.home, version, work)
    record = platform.wait(platform.deploy("hello", "dev", image, f"bench {size}"), 300)
    if record["status"] != "completed":
        raise SystemExit(f"deploy of {size} failed: {record['error']}")
    total = seconds_between(record["createdAt"], record["finishedAt"])
    return {"total_s": total, **split_tasks(platform.tasks(str(record["id"])))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="klink-bench-deploy-") as temp:
        work = Path(temp)
        platform = Platform(work / "platform")
        try:
            platform.start()
            local_hello(platform, {"healthCheckIntervalSeconds": 0.5})
            runs: dict[int, list[dict[str, Any]]] = {size: [] for size in SIZES}
            load_before = load_average()
            number = 0
            for _round in range(args.rounds):
                for size in SIZES:
                    # First a group of this size, so the measured deploy replaces a same-size one.
                    number += 1
                    deploy_once(platform, work, size, f"{number}.0")
                    number += 1
                    runs[size].append(deploy_once(platform, work, size, f"{number}.0"))
                    print(f"  round {_round + 1}, {size:>2} instances: {runs[size][-1]}")
            load_after = load_average()
        finally:
            platform.close()
    base = median([r["total_s"] for r in runs[1]])
    results: list[dict[str, Any]] = []
    for size in SIZES:
        total = median([r["total_s"] for r in runs[size]])
        results.append(
            {
                "case": f"{size} instance{'s' if size > 1 else ''}",
                "median_total_s": total,
                "median_waiting_s": median([r["waiting_s"] for r in runs[size]]),
                "median_engine_s": median([r["engine_s"] for r in runs[size]]),
                "ratio": round(total / base, 2),
                "runs": runs[size],
            }
        )
    ratio16 = results[-1]["ratio"]
    print(
        table(
            ["case", "total s", "waiting s", "engine s", "ratio to 1"],
            [
                [
                    r["case"],
                    r["median_total_s"],
                    r["median_waiting_s"],
                    r["median_engine_s"],
                    r["ratio"],
                ]
                for r in results
            ],
        )
    )
    met = ratio16 <= 1.5
    print(f"target {TARGET}: {'met' if met else 'MISSED'} ({ratio16}x)")
    path = write_result(
        "deploy_local",
        {
            "rounds": args.rounds,
            "load_average": [load_before, load_after],
            "measure": "deployment createdAt -> finishedAt; waiting = wait_* task rows, "
            "engine = every other task row",
            "target": TARGET,
            "target_met": met,
            "results": results,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
