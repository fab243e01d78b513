"""Local provider launch: a group of 8 against a group of 1, on a real local cloud.

Time from ``create_group`` until every instance of the group answers ``/healthcheck`` (the
hello example, started by the image's start command), and until every instance is
``InService`` with a trivial start command (``sleep``: the launch machinery alone). Rounds
interleave 1 and 8 so machine noise hits both alike; the figure is the ratio of medians, shown
beside 8x (what launching one after another would cost). On a machine with few cores the HTTP
ratio is bounded by CPU: each hello instance is a Python process whose start-up is CPU work.

    .venv/bin/python bench/local_launch.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from klink.providers import base
from klink.providers.local import control, daemon
from klink.providers.local.images import ImageStore
from klink.providers.local.provider import LocalProvider
from klink.providers.local.timing import time_group_launch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "local_launch.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="klink-bench-"))
    try:
        staging = home / "staging"
        (staging / "app").mkdir(parents=True)
        shutil.copy(ROOT / "examples" / "hello" / "hello.py", staging / "app" / "hello.py")
        image = ImageStore(home).create(
            staging,
            name="hello-bench",
            start_command=f"exec {shlex.quote(sys.executable)} app/hello.py",
            tags={base.TAG_APP: "hello", base.TAG_VERSION: "1.0"},
        )
        provider = LocalProvider(home, daemon.ensure(home))
        port = free_port()
        user_data = (
            "#cloud-config\nwrite_files:\n- path: /etc/hello.properties\n"
            f"  content: 'service.port={port}'\n"
        )
        provider.create_launch_template(
            base.LaunchTemplateSpec(
                name="lt", image_id=image.id, instance_type="local", user_data=user_data
            )
        )
        sleeper = ImageStore(home).create(
            staging, name="sleep-bench", start_command="exec sleep 600", tags={base.TAG_APP: "s"}
        )
        provider.create_launch_template(
            base.LaunchTemplateSpec(
                name="lt-sleep", image_id=sleeper.id, instance_type="local", user_data=""
            )
        )
        cases = {"http": ("lt", port), "process": ("lt-sleep", None)}
        times: dict[tuple[str, int], list[float]] = {(c, n): [] for c in cases for n in (1, 8)}
        n = 0
        for _ in range(args.rounds):
            for case, (template, case_port) in cases.items():
                for size in (1, 8):
                    name = f"bench-bench-v{n:03d}"
                    n += 1
                    elapsed = time_group_launch(provider, name, template, size, case_port)
                    times[(case, size)].append(elapsed)
                    provider.delete_group(name)
                    while provider.group_exists(name):
                        time.sleep(0.05)
        provider.close()
    finally:
        control.stop_all(home, grace=2.0)
        shutil.rmtree(home, ignore_errors=True)
    labels = {"http": "serving HTTP (hello)", "process": "InService (sleep)"}
    rows = []
    for case in cases:
        one = statistics.median(times[(case, 1)])
        eight = statistics.median(times[(case, 8)])
        rows += [
            {"case": f"1 instance, {labels[case]}", "median_s": round(one, 3), "ratio": 1.0},
            {
                "case": f"8 instances, {labels[case]}",
                "median_s": round(eight, 3),
                "ratio": round(eight / one, 2),
            },
            {"case": "  8 one after another (8 x 1)", "median_s": round(8 * one, 3), "ratio": 8.0},
        ]
    for row in rows:
        print(f"{row['case']:<38} {row['median_s']:>8.3f}s {row['ratio']:>6.2f}x")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "local_launch",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "rounds": args.rounds,
                "measure": "create_group until every instance answers /healthcheck (http) "
                "or is InService (process)",
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
