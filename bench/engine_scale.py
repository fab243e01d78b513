"""Several engines on PostgreSQL: throughput, claim latency and where it stops scaling.

The platform of ``tests/workers`` (``tests/workers/fleet.py``): a real PostgreSQL started here
on loopback, ``klink serve`` with ``KLINK_ENGINE=0`` (the API, metadata and config that
preparation reads over HTTP), and 1, 2 or 4 ``klink worker`` processes (4 engine threads
each, the default), all on one FakeCloud (one in-memory FakeProvider served over loopback to
every process, ~30 µs a call). Every deployment is a red-black deployment of its own app (2
instances, a target group), created through ``POST /deploy``; each worker writes a journal of
its claims and actions, from which the figures come:

- zero latency (instances in service at the first look): 1, 10, 100 and 1,000 concurrent
  deployments: actions/s (every attempt counted, from the task rows), ms per action of one
  deployment alone, claim latency (due → claimed) p50 and p99;
- realistic waits (instances take ``BOOT`` seconds to exist and turn healthy): 1 and 100
  concurrent deployments on 4 workers; 100 should take no more than 2x the time of one, since
  a waiting deployment holds no worker.

Goals: claim p99 < 100 ms at 100 concurrent; 100 with waits <= 2x one. Writes
``bench/results/engine_scale.json``. Run: ``.venv/bin/python bench/engine_scale.py`` (about 10
minutes on 2 cores; ``--quick`` skips the 1,000 case; ``--cpu`` runs only 100 concurrent on 1
and 4 workers and says which processes used the CPU).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fixtures_postgres import postgres_server
from tests.workers.fleet import Fleet

from klink import store

RESULTS = Path(__file__).parent / "results" / "engine_scale.json"
BOOT = 3.0  # seconds an instance takes to exist and turn healthy in the "waits" scenario


@contextmanager
def postgres() -> Iterator[str]:
    """The tests' PostgreSQL server (``tests/fixtures_postgres.py``, its generator run as a
    context manager); yields the URL of the server, to which a database name is appended."""
    with contextmanager(postgres_server.__wrapped__)() as (host, port):
        yield f"postgresql+psycopg://klink@{host}:{port}/"


def _database(base: str, name: str) -> str:
    import psycopg

    port = sa.engine.make_url(base).port
    with psycopg.connect(
        f"host=127.0.0.1 port={port} user=klink dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base + name


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid``; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_pids() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _cpu_split(fleet: Fleet, workers: list[Any]) -> dict[str, float]:
    serve = next(p for p in fleet.processes if p.name == "serve")
    return {
        "workers": sum(_cpu(w.pid) for w in workers),
        "serve": _cpu(serve.pid),
        "postgres": sum(_cpu(pid) for pid in _postgres_pids()),
        "fake_cloud_and_bench": sum(os.times()[:2]),
    }


def run(fleet: Fleet, workers: int, count: int, tag: str) -> dict[str, Any]:
    """``count`` concurrent deployments of new apps on ``workers`` fresh worker processes."""
    apps = [f"{tag}{n:04d}" for n in range(count)]
    fleet.setup(apps)
    started = [fleet.worker(f"{tag}w{n}") for n in range(workers)]
    fleet.wait_ready(started)  # every worker has opened its runtime and is polling
    t0 = time.time()
    before = _cpu_split(fleet, started)
    ids = fleet.deploy(apps)
    fleet.wait_done(list(ids.values()), timeout=3600)
    after = _cpu_split(fleet, started)
    cpu = {k: round(after[k] - before[k], 1) for k in before}
    for process in started:
        process.stop()
    fleet.processes = [p for p in fleet.processes if p not in started]
    wanted = set(ids.values())
    with store.read(fleet.db) as conn:
        rows = conn.execute(
            sa.text(
                "SELECT d.id, d.status, d.created_at, d.finished_at, "
                "(SELECT sum(attempts) FROM deploy_tasks t WHERE t.deployment_id = d.id) AS n "
                "FROM deployments d"
            )
        ).all()
    rows = [r for r in rows if r.id in wanted]
    failed = [r.id for r in rows if r.status != "completed"]
    assert not failed, failed
    actions = sum(int(r.n) for r in rows)
    end = max(r.finished_at for r in rows).timestamp()
    elapsed = end - t0
    events = [e for e in fleet.journal() if e.get("id") in wanted]
    claims = [1000 * float(e["latency"]) for e in events if e["event"] == "claim"]
    per_deployment = [
        1000 * (r.finished_at - r.created_at).total_seconds() / int(r.n) for r in rows
    ]
    durations = [(r.finished_at - r.created_at).total_seconds() for r in rows]
    return {
        "workers": workers,
        "deployments": count,
        "actions": actions,
        "seconds": round(elapsed, 2),
        "actions_per_second": round(actions / elapsed, 1),
        "ms_per_action_of_a_deployment_median": round(statistics.median(per_deployment), 2),
        "deployment_seconds_median": round(statistics.median(durations), 2),
        "deployment_seconds_max": round(max(durations), 2),
        "claims": len(claims),
        "claim_ms_p50": round(_pct(claims, 0.5), 1),
        "claim_ms_p99": round(_pct(claims, 0.99), 1),
        "cpu_seconds": cpu,  # while the deployments ran (PostgreSQL: every backend)
    }


def main() -> None:
    quick = "--quick" in sys.argv
    if "--cpu" in sys.argv:  # where the time goes at 100 concurrent, 1 and 4 workers
        with postgres() as base:
            fleet = Fleet(Path(tempfile.mkdtemp(prefix="klink-bench-cpu-")), _database(base, "c"))
            try:
                fleet.serve()
                for workers in (1, 4):
                    print(json.dumps(run(fleet, workers, 100, f"c{workers}x")), flush=True)
            finally:
                fleet.close()
        return
    root = Path(tempfile.mkdtemp(prefix="klink-bench-scale-"))
    rows: list[dict[str, Any]] = []
    waits: list[dict[str, Any]] = []
    with postgres() as base:
        fleet = Fleet(root / "zero", _database(base, "zero"))
        try:
            fleet.serve()
            for workers in (1, 2, 4):
                for count in (1, 10, 100):
                    rows.append(run(fleet, workers, count, f"z{workers}x{count}x"))
                    print(json.dumps(rows[-1]), flush=True)
            if not quick:  # once, on 4 workers: 51,000 actions take minutes here
                rows.append(run(fleet, 4, 1000, "k4x"))
                print(json.dumps(rows[-1]), flush=True)
        finally:
            fleet.close()
        fleet = Fleet(root / "waits", _database(base, "waits"), boot_seconds=BOOT)
        try:
            fleet.serve()
            for count in (1, 100):
                waits.append(run(fleet, 4, count, f"w{count}x"))
                print(json.dumps(waits[-1]), flush=True)
        finally:
            fleet.close()
    shutil.rmtree(root, ignore_errors=True)
    ratio = round(waits[1]["seconds"] / waits[0]["seconds"], 2)
    hundred = [r for r in rows if r["deployments"] == 100]
    result = {
        "benchmark": "engine_scale",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average": os.getloadavg(),
        "database": "PostgreSQL on loopback (fsync off)",
        "provider": "FakeCloud (one FakeProvider served over loopback to every process)",
        "engine_threads_per_worker": 4,
        "zero_latency": rows,
        "realistic_waits": {"boot_seconds": BOOT, "runs": waits, "ratio_100_vs_1": ratio},
        "targets": {"claim_ms_p99_at_100": 100, "waits_ratio_100_vs_1": 2},
        "met": {
            "claim_p99_at_100": all(r["claim_ms_p99"] < 100 for r in hundred),
            "waits_ratio": ratio <= 2,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    header = f"{'workers':>7}{'deploys':>8}{'actions':>8}{'s':>8}{'act/s':>8}{'ms/act':>8}"
    print(header + f"{'claim p50':>10}{'p99 ms':>8}")
    for r in rows + waits:
        print(
            f"{r['workers']:>7}{r['deployments']:>8}{r['actions']:>8}{r['seconds']:>8}"
            f"{r['actions_per_second']:>8}{r['ms_per_action_of_a_deployment_median']:>8}"
            f"{r['claim_ms_p50']:>10}{r['claim_ms_p99']:>8}"
        )
    print(f"realistic waits, 4 workers: 100 deployments / 1 = {ratio}x (target <= 2x)")


if __name__ == "__main__":
    main()
