"""What the platform benchmarks (``bench/deploy_local.py`` …) share: a platform with ``hello``
on the local provider, image making, task-row timing, tables and result files.

Benchmarks run the real platform (``Platform``: ``klink serve``, the local cloud, HAProxy) and
measure through its APIs; results go to ``bench/results/NAME.json`` with date and machine.
"""

from __future__ import annotations

import json
import os
import platform as host
import shlex
import shutil
import statistics
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from klink.providers import base
from klink.providers.local.images import ImageStore
from tests.e2e.platform import Platform, push_config

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello" / "hello.py"
RESULTS = ROOT / "bench" / "results"


def machine() -> str:
    return f"{host.machine()}, {os.cpu_count()} cores, Python {host.python_version()}"


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def seconds_between(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def split_tasks(tasks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Seconds in waiting actions (``wait_*``: instances, health, drains), each and in all, and
    in the rest (engine work)."""
    waiting = engine = 0.0
    waits: dict[str, float] = {}
    for task in tasks:
        spent = seconds_between(task.get("startedAt"), task.get("endedAt"))
        if str(task["action"]).startswith("wait_"):
            waiting += spent
            waits[str(task["action"])] = round(waits.get(str(task["action"]), 0.0) + spent, 3)
        else:
            engine += spent
    return {"waiting_s": round(waiting, 3), "engine_s": round(engine, 3), "waits": waits}


def make_image(home: Path, version: str, work: Path) -> str:
    """An image of the hello example that reports ``version``; its id."""
    staging = work / f"stage-{version}"
    (staging / "app").mkdir(parents=True)
    shutil.copy(HELLO, staging / "app" / "hello.py")
    (staging / "etc").mkdir()
    (staging / "etc" / "hello.properties").write_text("service.port=1\n")
    python = shlex.quote(sys.executable)
    image = ImageStore(home).create(
        staging,
        name=f"hello-{version}",
        start_command=f"KLINK_VERSION={version} exec {python} app/hello.py",
        tags={base.TAG_APP: "hello", base.TAG_VERSION: version},
    )
    return image.id


def set_capacity(platform: Platform, size: int, **params: Any) -> None:
    """Deployment params for ``size`` instances (and any extra params), pushed with git."""
    current = json.loads(
        (platform.root / "config-work" / "hello-dev" / "deployment-params.json").read_text()
    )
    current.update({"desiredCapacity": size, "min": size, "max": size, **params})
    push_config(platform, "hello", "dev", {"deployment-params.json": current})


def median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 3)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_result(name: str, figures: Mapping[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    body = {
        "benchmark": name,
        "date": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "machine": machine(),
        **figures,
    }
    path.write_text(json.dumps(body, indent=2) + "\n")
    return path
