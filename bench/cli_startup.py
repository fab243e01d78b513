"""CLI start-up: `klink --help` and read commands against `python3 -c pass`.

Runs are interleaved (one of each per round) so machine noise hits all alike; the figure is the
ratio of medians. Targets: `klink --help` <= 1.2x Python's own start-up, and the read command
`klink deployments hello dev --json` (server round trip included) <= 2.5x. The read commands
talk to a server: this benchmark starts one on a free loopback port in a temporary KLINK_HOME.

Klink's modules are byte-compiled first, as an installed wheel is (pip compiles on install):
an editable checkout under PYTHONDONTWRITEBYTECODE=1 would otherwise compile klink's sources
on every start, and that, not Klink, would be measured.

    .venv/bin/python bench/cli_startup.py [--rounds 30] [--baseline OLD/src]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "cli_startup.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument(
        "--baseline",
        metavar="SRC",
        help="also time the CLI of another source tree (e.g. `git archive REV src`), same rounds",
    )
    args = parser.parse_args()
    import compileall

    import klink

    compileall.compile_dir(str(Path(klink.__file__).parent), quiet=1)
    if args.baseline:
        compileall.compile_dir(str(Path(args.baseline) / "klink"), quiet=1)
    klink = str(Path(sys.executable).parent / "klink")
    home = Path(tempfile.mkdtemp(prefix="klink-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "KLINK_HOME": str(home),
        "KLINK_LISTEN": f"127.0.0.1:{port}",
        "KLINK_ENGINE": "0",
        "KLINK_SCHEDULES": "0",
    }
    server = subprocess.Popen(
        [klink, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/metadata/ping", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("klink serve did not start") from None
                time.sleep(0.1)
        commands = {
            "python3 -c pass": [sys.executable, "-c", "pass"],
            "klink --help": [klink, "--help"],
            "klink apps --json": [klink, "apps", "--json"],
            "klink deployments hello dev --json": [klink, "deployments", "hello", "dev", "--json"],
        }
        envs = dict.fromkeys(commands, env)
        if args.baseline:
            before = {**env, "PYTHONPATH": str(Path(args.baseline).resolve())}
            for name in list(commands)[1:]:
                commands[f"{name} (baseline)"] = commands[name]
                envs[f"{name} (baseline)"] = before
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for name, argv in commands.items():  # warm the page cache
            timed(argv, envs[name])
        for _ in range(args.rounds):
            for name, argv in commands.items():
                samples[name].append(timed(argv, envs[name]))
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)
    base = statistics.median(samples["python3 -c pass"])
    rows = []
    print(f"{'command':<47}{'median ms':>10}{'p90 ms':>9}{'ratio':>8}")
    for name, values in samples.items():
        median = statistics.median(values)
        p90 = sorted(values)[int(len(values) * 0.9) - 1]
        rows.append(
            {
                "command": name,
                "median_ms": round(median * 1000, 2),
                "p90_ms": round(p90 * 1000, 2),
                "ratio": round(median / base, 2),
            }
        )
        print(f"{name:<47}{median * 1000:>10.1f}{p90 * 1000:>9.1f}{median / base:>8.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "cli_startup",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "rounds": args.rounds,
                "baseline": args.baseline,
                "target": "klink --help <= 1.2x, klink deployments hello dev --json <= 2.5x "
                "python3 -c pass",
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
