"""What the local cloud's request log costs: HAProxy with and without it, side by side.

The local latency builtins come from HAProxy's request log (one datagram per request, read by the
daemon into a histogram per group: ``providers/local/latency.py``). This measures what that costs
where it could show: requests per second through HAProxy at full speed. One ``hello`` instance (the
same for every run) behind a real HAProxy whose config Klink renders (``haproxy.render``), once
with the log (``log_path`` given) and once without, the two alternating in every round. The
daemon's reader (``RequestLog``) runs in a process of its own in both modes, idle without the log,
so the only difference is HAProxy's log lines. ``wrk -t2 -c16`` on keep-alive connections, on
loopback, 4 s a run. Printed and written to ``bench/results/request_log.json``:

- req/s and wrk's p99 in each mode (medians over the rounds), and their ratio;
- HAProxy's and the reader's CPU per 1,000 requests (``/proc/PID/stat``), and the share of the
  requests the reader counted (datagrams the kernel dropped under load are the rest).

    .venv/bin/python bench/request_log.py [--rounds 5] [--seconds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.traffic_floor import free_port, get, server_states, start_hello  # noqa: E402
from tests.e2e.benchkit import load_average, table, write_result  # noqa: E402

from klink.providers.local import haproxy  # noqa: E402

GROUP = "hello-dev-v001"
# The daemon's reader on its own: ready, then at end of input the responses it counted.
READER = """
import sys
from pathlib import Path
from klink.providers.local import latency
times = latency.ResponseTimes(lambda: {("hello-dev", "s0"): "hello-dev-v001"})
log = latency.RequestLog(Path(sys.argv[1]), times)
log.start()
print("ready", flush=True)
sys.stdin.read()
log.stop()
text = times.exposition().splitlines()
counts = [x for x in text if x.startswith(latency.METRIC + "_count")]
print(int(float(counts[0].rsplit(" ", 1)[1])) if counts else 0)
"""
DONE_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('KLINK-WRK {"requests": %d, "seconds": %.3f, "errors": %d, '
    .. '"p99_ms": %.3f}\\n', summary.requests, summary.duration / 1e6,
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(99) / 1000))
end
"""


def wrk(frontend: int, seconds: int, script: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", str(script), f"http://127.0.0.1:{frontend}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("KLINK-WRK "))
    result: dict[str, Any] = json.loads(line.removeprefix("KLINK-WRK "))
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(work: Path, port: int, logged: bool, seconds: int, script: Path) -> dict[str, Any]:
    frontend = free_port()
    folder = work / f"haproxy-{'on' if logged else 'off'}-{time.monotonic_ns()}"
    folder.mkdir(parents=True)
    backend = haproxy.Backend(
        name="hello-dev",
        frontend_port=frontend,
        port=port,
        health_path="/healthcheck",
        interval_ms=1000,
        rise=2,
        fall=2,
        servers={"i-1": haproxy.Server("127.0.0.1", False, 0, 1, GROUP, "i-1")},
        slots=1,
    )
    sock_path, log_path = folder / "admin.sock", folder / "log.sock"
    config = haproxy.render(
        [backend], sock_path, folder / "state", None, log_path if logged else None
    )
    (folder / "haproxy.cfg").write_text(config)
    # The reader runs in a process of its own, as in the daemon, in both modes (idle without
    # the log): the only difference between the two is HAProxy's log lines.
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(log_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "ready"
    balancer = subprocess.Popen(["haproxy", "-q", "-f", str(folder / "haproxy.cfg")])
    try:
        deadline = time.monotonic() + 30
        while not (sock_path.exists() and server_states(sock_path).get("s0") == "UP"):
            if time.monotonic() > deadline:
                raise RuntimeError("hello never came up behind HAProxy")
            time.sleep(0.05)
        assert get("127.0.0.1", frontend) == "1.0"
        lb_before = cpu_seconds(balancer.pid)
        reader_before = cpu_seconds(reader.pid)
        result = wrk(frontend, seconds, script)
        lb_cpu = cpu_seconds(balancer.pid) - lb_before
        time.sleep(0.2)  # the last datagrams read
        cpu = cpu_seconds(reader.pid) - reader_before
        counted = int(reader.communicate("", timeout=10)[0].strip())
        return {
            "rps": result["requests"] / result["seconds"],
            "p99_ms": result["p99_ms"],
            "errors": result["errors"],
            "requests": result["requests"],
            "haproxy_cpu_ms_per_1000": 1e6 * lb_cpu / result["requests"],
            "cpu_ms_per_1000": 1e6 * cpu / result["requests"],
            # The first check request and the probe above are counted too: at most 1 over.
            "counted_share": min(1.0, counted / result["requests"]) if logged else None,
        }
    finally:
        balancer.terminate()
        balancer.wait(timeout=10)
        if reader.poll() is None:
            reader.kill()
            reader.wait()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=4)
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("haproxy") is None:
        sys.exit("needs wrk and haproxy: scripts/test installs them")
    load_before = load_average()
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(prefix="klink-bench-log-") as tmp:
        work = Path(tmp)
        script = work / "done.lua"
        script.write_text(DONE_LUA)
        port = free_port()
        hello = start_hello(work, "127.0.0.1", port, "1.0")  # one instance for every run
        try:
            for round_ in range(args.rounds):
                order = ("off", "on") if round_ % 2 == 0 else ("on", "off")
                for mode in order:
                    runs[mode].append(run(work, port, mode == "on", args.seconds, script))
        finally:
            hello.terminate()
            hello.wait(timeout=10)
    median = {
        mode: {
            key: round(statistics.median(r[key] for r in rows), 3)
            for key in (
                "rps",
                "p99_ms",
                "haproxy_cpu_ms_per_1000",
                "cpu_ms_per_1000",
                "counted_share",
            )
            if rows[0][key] is not None
        }
        for mode, rows in runs.items()
    }
    errors = sum(r["errors"] for rows in runs.values() for r in rows)
    ratio = round(median["on"]["rps"] / median["off"]["rps"], 3)
    print(
        table(
            [
                "log",
                "req/s",
                "p99 ms",
                "HAProxy CPU ms / 1000 req",
                "reader CPU ms / 1000 req",
                "counted",
            ],
            [
                [
                    mode,
                    m["rps"],
                    m["p99_ms"],
                    m["haproxy_cpu_ms_per_1000"],
                    m.get("cpu_ms_per_1000", "-"),
                    m.get("counted_share", "-"),
                ]
                for mode, m in median.items()
            ],
        )
    )
    print(f"req/s with the log / without: {ratio}; errors in all runs: {errors}")
    path = write_result(
        "request_log",
        {
            "rounds": args.rounds,
            "seconds": args.seconds,
            "load_average": [load_before, load_average()],
            "median": median,
            "ratio_rps": ratio,
            "errors": errors,
            "runs": runs,
        },
    )
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
