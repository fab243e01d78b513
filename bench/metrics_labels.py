"""The cost of the local cloud's labelled ``/metrics`` against HAProxy's exporter itself.

A real local cloud (daemon + HAProxy) with one target group of 32 server slots, ``groups``
deployment groups of 2 ``hello`` instances each attached as weighted members (the rest of the
slots free). Side by side in each round: ``GET`` of HAProxy's exporter straight
(``HAProxy.metrics_url()``), ``GET`` of the daemon's ``/metrics`` (the same text read from
HAProxy, the slot → group map read twice, every server line parsed and the group added), and
the rewriting alone (``exposition.add_group_labels`` on the exporter's text, in process).
Medians over ``--rounds`` rounds of ``--requests`` each, interleaved; the ratio daemon /
HAProxy is what a 1 s scrape costs over scraping HAProxy itself.

    .venv/bin/python bench/metrics_labels.py [--rounds 5] [--requests 20] [--groups 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' helpers build images and groups
RESULTS = ROOT / "bench" / "results" / "metrics_labels.json"


def timed(call: object, count: int) -> float:
    """Median seconds of ``count`` calls of ``call``."""
    assert callable(call)
    times = []
    for _ in range(count):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--groups", type=int, default=3)
    args = parser.parse_args()
    from tests.analysis.local_cloud import Member, add_members, balancer, local_cloud

    from klink.providers.local import daemon, exposition
    from klink.providers.local.haproxy import HAProxy

    home = Path(tempfile.mkdtemp(prefix="klink-bench-"))
    rows: dict[str, list[float]] = {"haproxy": [], "daemon": [], "rewrite": []}
    try:
        with local_cloud(home / "home") as cloud:
            port, _ = balancer(cloud)
            members = {f"hello-dev-v{i:03d}": Member(f"1.{i}", size=2) for i in range(args.groups)}
            add_members(cloud, home / "home", home, port, members)
            exporter = HAProxy(home / "home" / "local" / "haproxy").metrics_url()
            labelled = f"{daemon.running(home / 'home')['url']}/metrics"  # type: ignore[index]
            with httpx.Client(timeout=10) as client:
                text = client.get(exporter).text
                out = client.get(labelled).text
                groups = cloud.traffic("hello-dev").groups
                mapping = {
                    ("hello-dev", server.split("/")[1]): g.name
                    for g in groups
                    for server in g.servers
                }
                for _round in range(args.rounds):
                    rows["haproxy"].append(timed(lambda: client.get(exporter), args.requests))
                    rows["daemon"].append(timed(lambda: client.get(labelled), args.requests))
                    rows["rewrite"].append(
                        timed(lambda: exposition.add_group_labels(text, mapping), args.requests)
                    )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    medians = {k: statistics.median(v) for k, v in rows.items()}
    labelled_lines = sum(1 for line in out.split("\n") if 'group="' in line)
    result = {
        "benchmark": "metrics_labels",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "rounds": args.rounds,
        "requests_per_round": args.requests,
        "groups": args.groups,
        "exporter_bytes": len(text.encode()),
        "exporter_lines": text.count("\n"),
        "labelled_lines": labelled_lines,
        "haproxy_ms": round(medians["haproxy"] * 1000, 2),
        "daemon_ms": round(medians["daemon"] * 1000, 2),
        "rewrite_ms": round(medians["rewrite"] * 1000, 2),
        "daemon_over_haproxy": round(medians["daemon"] / medians["haproxy"], 2),
    }
    print(
        f"exporter: {result['exporter_bytes']} bytes, {result['exporter_lines']} lines, "
        f"{labelled_lines} labelled\n"
        f"HAProxy exporter {result['haproxy_ms']} ms | daemon /metrics {result['daemon_ms']} ms "
        f"({result['daemon_over_haproxy']}x) | rewriting alone {result['rewrite_ms']} ms"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
