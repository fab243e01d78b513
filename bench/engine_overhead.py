"""Engine overhead per action on a zero-latency in-memory provider (FakeProvider).

Runs the real red-black plan (preparation + deployment phase, with an old group to retire)
through the real engine and store (SQLite in WAL mode in a temp folder), with FakeProvider and
in-memory metadata/config, so the time is the orchestrator's own: claiming, running, persisting
after every action. FakeProvider is set so that nothing has to wait (instances in service at
the first look, deletions immediate). Two scenarios, side by side in one run:

- one deployment alone: ms per action (target <= 5 ms);
- 100 deployments of 100 different apps at once, 4 engine threads: ms per action, and its ratio
  to the single deployment (target <= 2x).

Writes ``bench/results/engine_overhead.json``. Run: ``.venv/bin/python bench/engine_overhead.py``.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from klink import store
from klink.deploy import plan as planner
from klink.deploy.context import Services
from klink.deploy.engine import Engine
from klink.deploy.model import Deployment
from klink.deploy.store import DeploymentStore
from klink.notify import Dispatcher
from klink.providers.base import TargetGroupSpec
from klink.testing.fake_provider import FakeProvider
from klink.testing.fake_sources import FakeConfig, FakeMetadata

RESULTS = Path(__file__).parent / "results" / "engine_overhead.json"
WORKERS = 4
IDLE = 0.02  # an idle engine thread looks for work again after this long (serve uses 0.2)


def utcnow() -> datetime:
    return datetime.now(UTC)


def world(apps: list[str]) -> tuple[DeploymentStore, Services, FakeProvider]:
    folder = Path(tempfile.mkdtemp(prefix="klink-bench-"))
    engine = store.create_engine(f"sqlite:///{folder / 'klink.db'}")
    store.migrate(engine)
    fake = FakeProvider(pending_polls=1, delete_polls=0)
    fake.ensure_target_group(TargetGroupSpec(name="web", port=8080))
    metadata = FakeMetadata()
    metadata.envs["prod"] = {"provider": "local"}
    for app in apps:
        metadata.apps[app] = {"contact": "team@example.com"}
        fake.add_image(f"img-{app}-1", app, "1.0")
        fake.add_image(f"img-{app}-2", app, "2.0")
    config = FakeConfig(
        {
            "application-properties.json": {"service.port": 8080},
            "deployment-params.json": {"targetGroups": ["web"], "desiredCapacity": 2, "max": 2},
            "launch-data.json": ["echo ready"],
        }
    )
    services = Services(
        metadata=metadata,
        config=config,
        provider_for=lambda env, meta: fake,
        notifier=Dispatcher(post=lambda url, body: 200),
        probe=lambda url: True,
        clock=utcnow,
    )
    return DeploymentStore(engine), services, fake


def submit(db: DeploymentStore, apps: list[str], image: str) -> list[str]:
    ids = []
    for app in apps:
        d = Deployment(
            id=f"{app}-{image}",
            app=app,
            env="prod",
            image=f"img-{app}-{image}",
            commit=None,
            user="bench",
            message="bench",
            plan=list(planner.PREPARATION),
        )
        db.create(d, utcnow())
        ids.append(d.id)
    return ids


def work(engine: Engine, pending: list[str]) -> None:
    """An engine thread: claim and run until every deployment of ``pending`` has ended."""
    while True:
        if engine.run_once():
            continue
        if all(engine.db.get(i).status not in ("preparing", "running") for i in pending):
            return
        time.sleep(IDLE)


def run(db: DeploymentStore, services: Services, ids: list[str], workers: int) -> float:
    """Run ``ids`` to the end with ``workers`` engine threads; wall seconds."""
    start = time.perf_counter()
    threads = [
        threading.Thread(target=work, args=(Engine(db, services, holder=f"w{n}"), ids))
        for n in range(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def actions_run(db: DeploymentStore, ids: list[str]) -> tuple[int, int]:
    """(actions in the plans, action attempts run) of ``ids``; all must be completed."""
    planned = attempts = 0
    for deployment_id in ids:
        d = db.get(deployment_id)
        if d.status != "completed":
            raise SystemExit(f"{deployment_id} ended {d.status}: {d.error}")
        planned += len(d.plan)
        attempts += sum(t["attempts"] for t in db.tasks(deployment_id))
    return planned, attempts


def scenario(count: int, workers: int = WORKERS) -> dict[str, float | int]:
    apps = [f"app{n}" for n in range(count)]
    db, services, _fake = world(apps)
    first = submit(db, apps, "1")  # first deployments: the old groups to retire
    run(db, services, first, workers)
    ids = submit(db, apps, "2")
    seconds = run(db, services, ids, workers)
    planned, attempts = actions_run(db, ids)
    return {
        "deployments": count,
        "workers": workers,
        "plan_actions_each": planned // count,
        "action_attempts": attempts,
        "seconds": round(seconds, 3),
        "ms_per_action": round(1000 * seconds / attempts, 3),
    }


def main() -> None:
    scenario(1)  # warm-up: imports, first migrations, caches
    one = min((scenario(1) for _ in range(3)), key=lambda r: r["ms_per_action"])
    one_alone = min((scenario(1, 1) for _ in range(3)), key=lambda r: r["ms_per_action"])
    hundred = scenario(100)
    ratio = round(float(hundred["ms_per_action"]) / float(one["ms_per_action"]), 2)
    result = {
        "benchmark": "engine_overhead",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "workers": WORKERS,
        "provider": "FakeProvider (in-memory, zero latency)",
        "database": "SQLite (WAL) in a temp folder",
        "one_deployment": one,
        "one_deployment_one_worker": one_alone,
        "hundred_deployments": hundred,
        "ratio_hundred_vs_one_ms_per_action": ratio,
        "targets": {"ms_per_action": 5, "ratio": 2},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'scenario':<34}{'workers':>8}{'actions':>9}{'seconds':>9}{'ms/action':>11}")
    for label, row in (
        ("1 deployment", one_alone),
        ("1 deployment", one),
        ("100 deployments (100 apps)", hundred),
    ):
        print(
            f"{label:<34}{row['workers']:>8}{row['action_attempts']:>9}"
            f"{row['seconds']:>9.3f}{row['ms_per_action']:>11.3f}"
        )
    print(f"100 vs 1 (same {WORKERS} workers): {ratio}x (target <= 2x); target <= 5 ms/action")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
