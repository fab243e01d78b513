"""Undo time for 1, 4 and 16 instances while the old group exists, through the whole platform.

With ``keepPreviousGroup`` a completed deployment leaves the previous group running, scaled and
out of traffic (tagged ``klink:kept``). Each round, for 1, 4 and 16 instances in turn: deploy v_a,
deploy v_b over it (v_a's group kept), then ``POST /deploy/hello/dev/undo`` — the undo of the
last completed deployment, which re-enables the kept group (its instances registered again and
healthy in HAProxy) and removes v_b's. The figure is the time from the undo request to the
deployment's ``finishedAt``. Targets: 16 instances <= 1.2x 1 instance, and <= 3 s.

    .venv/bin/python bench/undo_local.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
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

from klink.providers.local.provider import LocalProvider

SIZES = (1, 4, 16)
TARGET = "16 instances <= 1.2x 1 instance, and <= 3 s"


def deployed(platform: Platform, work: Path, version: str) -> str:
    image = make_image(platform.home, version, work)
    record = platform.wait(platform.deploy("hello", "dev", image, f"bench {version}"), 300)
    if record["status"] != "completed":
        raise SystemExit(f"deploy of {version} failed: {record['error']}")
    return str(record["id"])


def undo_once(platform: Platform, work: Path, size: int, number: int) -> dict[str, Any]:
    set_capacity(platform, size, keepPreviousGroup=True)
    deployed(platform, work, f"{number}.0")
    second = deployed(platform, work, f"{number}.1")
    # The old group exists (kept, out of traffic) beside the new one.
    cloud = LocalProvider.from_environment("dev", {"provider": "local"}, platform)
    try:
        groups = len(cloud.list_groups(r"hello-dev-v\d{3}"))
    finally:
        cloud.close()
    if groups != 2:
        raise SystemExit(f"expected the kept group beside the new one, found {groups} groups")
    asked = datetime.now(UTC).isoformat()
    platform.call("POST", "/deploy/hello/dev/undo", json={"message": "bench undo"})
    record = platform.wait(second, 120)
    if record["status"] != "completed" or not record["undo"]:
        raise SystemExit(f"undo of {size} failed: {record['error']}")
    # Task rows run by the undo (started after it was asked): where its time went.
    tasks = [t for t in platform.tasks(second) if (t["startedAt"] or "") >= asked]
    return {
        "undo_s": round(seconds_between(asked, record["finishedAt"]), 3),
        "groups_before": groups,
        **split_tasks(tasks),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="klink-bench-undo-") as temp:
        work = Path(temp)
        platform = Platform(work / "platform")
        try:
            platform.start()
            local_hello(platform, {"healthCheckIntervalSeconds": 0.5})
            runs: dict[int, list[dict[str, Any]]] = {size: [] for size in SIZES}
            load_before = load_average()
            number = 0
            for round_ in range(args.rounds):
                for size in SIZES:
                    number += 1
                    runs[size].append(undo_once(platform, work, size, number))
                    print(f"  round {round_ + 1}, {size:>2} instances: {runs[size][-1]}")
            load_after = load_average()
        finally:
            platform.close()
    base = median([r["undo_s"] for r in runs[1]])
    results: list[dict[str, Any]] = []
    for size in SIZES:
        undo = median([r["undo_s"] for r in runs[size]])
        results.append(
            {
                "case": f"{size} instance{'s' if size > 1 else ''}",
                "median_undo_s": undo,
                "ratio": round(undo / base, 2),
                "median_waiting_s": median([r["waiting_s"] for r in runs[size]]),
                "median_engine_s": median([r["engine_s"] for r in runs[size]]),
                "runs": runs[size],
            }
        )
    print(
        table(
            ["case", "undo s", "waiting s", "engine s", "ratio to 1"],
            [
                [
                    r["case"],
                    r["median_undo_s"],
                    r["median_waiting_s"],
                    r["median_engine_s"],
                    r["ratio"],
                ]
                for r in results
            ],
        )
    )
    last = results[-1]
    met = last["ratio"] <= 1.2 and last["median_undo_s"] <= 3.0
    print(f"target {TARGET}: {'met' if met else 'MISSED'}")
    path = write_result(
        "undo_local",
        {
            "rounds": args.rounds,
            "load_average": [load_before, load_after],
            "old_group": "kept by keepPreviousGroup (a completed deployment), re-enabled by undo",
            "measure": "POST /deploy/hello/dev/undo -> the deployment's finishedAt",
            "target": TARGET,
            "target_met": met,
            "results": results,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
