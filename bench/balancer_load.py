"""Requests sent and failed through HAProxy during a deploy and during an undo, with ``wrk``.

The whole platform runs (``klink serve``, the local cloud, HAProxy, 2 instances of ``hello``,
``keepPreviousGroup`` as in ``klink quickstart``). ``wrk`` (keep-alive, 2 threads, 16
connections, on loopback only) loads the app's HAProxy frontend from before a deployment of a
new version is asked until after it completed, then likewise around the undo of that deployment.
Failed = wrk's socket errors (connect, read, write, timeout) + non-2xx/3xx answers, reported by
a Lua ``done`` hook (no per-request Lua, so wrk runs at full speed). The same wrk for 3 s with
no deployment, through HAProxy and straight to one instance, is what they are compared with.
Targets: >= 1,000 req/s
during each, and 0 failed.

    .venv/bin/python bench/balancer_load.py
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.benchkit import load_average, make_image, set_capacity, table, write_result
from tests.e2e.platform import Platform, free_port, local_hello

from klink.providers.local.provider import LocalProvider

TARGET = ">= 1000 req/s through HAProxy during a deploy and an undo, 0 failed"
DONE_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'KLINK-WRK {"requests": %d, "seconds": %.3f, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d, "p99_ms": %.3f}\\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(99) / 1000))
end
"""


class Wrk:
    """``wrk`` in the background until ``stop()`` (SIGINT: wrk then reports what it did)."""

    def __init__(self, url: str, script: Path, threads: int, connections: int) -> None:
        host = url.split("/")[2].split(":")[0]
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError("wrk is pointed at loopback addresses only")
        binary = shutil.which("wrk")
        if binary is None:
            raise SystemExit("wrk is not installed (scripts/bench installs it)")
        argv = [binary, "-t", str(threads), "-c", str(connections), "-d", "600s"]
        argv += ["--timeout", "5s", "-s", str(script), url]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)

    def stop(self) -> dict[str, Any]:
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=30)
        for line in out.splitlines():
            if line.startswith("KLINK-WRK "):
                figures: dict[str, Any] = json.loads(line.removeprefix("KLINK-WRK "))
                failed = sum(figures[k] for k in ("connect", "read", "write", "status", "timeout"))
                figures["failed"] = failed
                figures["rate"] = round(figures["requests"] / figures["seconds"], 1)
                return figures
        raise SystemExit(f"wrk said nothing usable:\n{out}")


def steady(url: str, script: Path, args: Any, seconds: float = 3.0) -> dict[str, Any]:
    """The same wrk with no deployment running: what the figures above compare with."""
    wrk = Wrk(url, script, args.threads, args.connections)
    time.sleep(seconds)
    return wrk.stop()


def under_load(platform: Platform, url: str, script: Path, ask: Any, args: Any) -> dict[str, Any]:
    wrk = Wrk(url, script, args.threads, args.connections)
    try:
        time.sleep(1.0)
        deployment = ask()
        record = platform.wait(deployment, 180)
        time.sleep(1.0)
    finally:
        figures = wrk.stop()
    if record["status"] != "completed":
        raise SystemExit(f"deployment {deployment} ended {record['status']}: {record['error']}")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="klink-bench-balancer-") as temp:
        work = Path(temp)
        script = work / "done.lua"
        script.write_text(DONE_LUA)
        platform = Platform(work / "platform")
        try:
            platform.start()
            port = free_port()
            balancer = local_hello(platform, {}, port=port)
            set_capacity(platform, 2, keepPreviousGroup=True)
            url = f"{balancer}/healthcheck"
            first = platform.deploy("hello", "dev", make_image(platform.home, "1.0", work))
            if platform.wait(first, 120)["status"] != "completed":
                raise SystemExit("the first deploy failed")
            load_before = load_average()
            cloud = LocalProvider.from_environment("dev", {"provider": "local"}, platform)
            try:
                instance = cloud.describe_group("hello-dev-v000").instances[0]
            finally:
                cloud.close()
            direct = f"http://{instance.private_ip}:{port}/healthcheck"
            baseline_balancer = steady(url, script, args)
            baseline_direct = steady(direct, script, args)
            v2 = make_image(platform.home, "2.0", work)
            second: list[str] = []

            def deploy() -> str:
                second.append(platform.deploy("hello", "dev", v2, "bench: under wrk"))
                return second[0]

            def undo() -> str:
                platform.call("POST", "/deploy/hello/dev/undo", json={"message": "bench"})
                return second[0]

            during_deploy = under_load(platform, url, script, deploy, args)
            during_undo = under_load(platform, url, script, undo, args)
            load_after = load_average()
        finally:
            platform.close()
    results = [
        {"case": "deploy v1 -> v2 (2 instances)", **during_deploy},
        {"case": "undo of that deploy", **during_undo},
        {"case": "no deployment, through HAProxy", **baseline_balancer},
        {"case": "no deployment, one instance directly", **baseline_direct},
    ]
    print(
        table(
            ["case", "requests", "seconds", "req/s", "failed", "p99 ms"],
            [
                [r["case"], r["requests"], r["seconds"], r["rate"], r["failed"], r["p99_ms"]]
                for r in results
            ],
        )
    )
    met = all(r["failed"] == 0 and r["rate"] >= 1000 for r in results[:2])
    print(f"target {TARGET}: {'met' if met else 'MISSED'}")
    path = write_result(
        "balancer_load",
        {
            "load_average": [load_before, load_after],
            "wrk": f"-t {args.threads} -c {args.connections} --timeout 5s, keep-alive, "
            "GET /healthcheck on the HAProxy frontend",
            "target": TARGET,
            "target_met": met,
            "results": results,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
