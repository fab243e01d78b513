"""The deploy store and engine on PostgreSQL: the same SQL as SQLite, and leases and slots that
hold under real concurrency (row counts decide, not check-then-insert)."""

from __future__ import annotations

import threading

import pytest

from klink import store
from klink.deploy import plan as planner
from klink.deploy.engine import Engine
from klink.deploy.model import Deployment
from klink.deploy.store import DeploymentStore
from klink.errors import Conflict
from klink.providers.base import TargetGroupSpec
from klink.service.runtime import utcnow
from klink.testing.fake_provider import FakeProvider
from klink.testing.fake_sources import fake_services

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _deployment(app: str, image: str) -> Deployment:
    return Deployment(
        id=f"{app}-{image}",
        app=app,
        env="prod",
        image=image,
        commit=None,
        user="t",
        message="m",
        plan=list(planner.PREPARATION),
    )


def test_engine_and_store_on_postgres(postgres_url: str) -> None:
    engine = store.create_engine(postgres_url)
    store.migrate(engine)
    db = DeploymentStore(engine)
    fake = FakeProvider(pending_polls=1, delete_polls=0)
    fake.ensure_target_group(TargetGroupSpec(name="web", port=8080))
    apps = [f"app{n}" for n in range(8)]
    for app in apps:
        fake.add_image(f"img-{app}", app)
    services = fake_services(fake, apps)

    # Racing creations for one app+env: exactly one wins.
    results: list[str] = []
    barrier = threading.Barrier(6)

    def create(n: int) -> None:
        barrier.wait()
        try:
            db.create(_deployment("app0", f"img-app0-{n}"), utcnow())
            results.append("won")
        except Conflict:
            results.append("409")

    threads = [threading.Thread(target=create, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["409"] * 5 + ["won"]
    winner = db.find(app="app0")[0]
    with store.write(engine) as conn:
        conn.exec_driver_sql("DELETE FROM deploy_slots")
        conn.exec_driver_sql("DELETE FROM deployments")
    del winner

    ids = []
    for app in apps:
        d = _deployment(app, f"img-{app}")
        db.create(d, utcnow())
        ids.append(d.id)
    # Four engines race for eight deployments: each runs to completion exactly once.
    engines = [Engine(db, services, holder=f"e{n}") for n in range(4)]
    workers = [threading.Thread(target=e.drain) for e in engines]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for deployment_id in ids:
        d = db.get(deployment_id)
        assert d.status == "completed", d.error
        tasks = db.tasks(deployment_id)
        assert [t["seq"] for t in tasks] == list(range(len(d.plan)))
    assert fake.count("create_group") == len(apps)
    assert db.last_completed("app3", "prod") is not None
    engine.dispose()
