"""Controls racing a running action, on SQLite and on PostgreSQL: a control that arrives while an
engine holds the lease is recorded and applied by the holder at the action boundary; unlock is
refused; the engine never writes back a status it did not set."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from klink import store
from klink.deploy import plan as planner
from klink.deploy.commands import Actor, Commands
from klink.deploy.context import Services
from klink.deploy.engine import Engine
from klink.deploy.model import Deployment
from klink.deploy.store import DeploymentStore
from klink.errors import Conflict
from klink.notify import Dispatcher
from klink.providers.base import TargetGroupSpec
from klink.service.runtime import utcnow
from klink.testing.fake_provider import FakeProvider
from klink.testing.fake_sources import FakeConfig, FakeMetadata

OPS = Actor("ops")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'klink.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = store.create_engine(url)
    store.migrate(engine)
    yield engine
    engine.dispose()


def _services(fake: FakeProvider) -> Services:
    metadata = FakeMetadata()
    metadata.envs["prod"] = {"provider": "local"}
    metadata.apps["search"] = {"contact": "t@example.com"}
    return Services(
        metadata=metadata,
        config=FakeConfig(
            {
                "application-properties.json": {"service.port": 8080},
                "deployment-params.json": {"targetGroups": ["web"]},
                "launch-data.json": [],
            }
        ),
        provider_for=lambda env, meta: fake,
        notifier=Dispatcher(post=lambda url, body: 200),
        probe=lambda url: True,
        clock=utcnow,
    )


def _blocked_engine(db: DeploymentStore, services: Services, action: str) -> tuple[Engine, Any]:
    """An engine whose ``action`` blocks until released: a control arrives while it runs."""
    engine = Engine(db, services, holder="runner")
    found = engine.executor.registry[action]
    entered, release = threading.Event(), threading.Event()

    def slow(ctx: Any) -> Any:
        entered.set()
        release.wait(20)
        return found.run(ctx)

    engine.executor.registry = {**engine.executor.registry, action: replace(found, run=slow)}
    return engine, (entered, release)


@pytest.mark.parametrize("control", ["pause", "cancel", "unlock"])
def test_a_control_during_a_running_action(database: Any, control: str) -> None:
    db = DeploymentStore(database)
    fake = FakeProvider(pending_polls=1, delete_polls=0)
    fake.ensure_target_group(TargetGroupSpec(name="web", port=8080))
    fake.add_image("img-search-1", "search")
    services = _services(fake)
    commands = Commands(db, lambda: services, utcnow)
    d = Deployment(
        "race1", "search", "prod", "img-search-1", None, "t", "m", plan=list(planner.PREPARATION)
    )
    db.create(d, utcnow())
    engine, (entered, release) = _blocked_engine(db, services, "read_environment")
    worker = threading.Thread(target=engine.run_once)
    worker.start()
    try:
        assert entered.wait(20)
        if control == "unlock":
            with pytest.raises(Conflict) as refused:
                commands.unlock(OPS, "search", "prod")
            assert "pause or cancel it first" in refused.value.message
            # The slot holds: a second deployment of the same app+env is refused.
            with pytest.raises(Conflict):
                db.create(replace(d, id="race2"), utcnow())
        else:
            answer = getattr(commands, control)(OPS, "search", "prod")
            assert answer["status"] == "preparing"  # recorded, not applied under the lease
    finally:
        release.set()
        worker.join(20)
    after = db.get("race1")
    if control == "pause":
        assert after.status == "paused"
        assert after.cursor == planner.names(planner.PREPARATION).index("read_environment") + 1
    elif control == "cancel":
        assert after.status == "cancelled"
        assert db.slot_holder("search", "prod") is None
    else:
        Engine(db, services).drain()
        assert db.get("race1").status == "completed"
    assert after.control is None
