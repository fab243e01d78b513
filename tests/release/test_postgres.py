"""The release flow's storage on PostgreSQL: the approvals table (migration deploy_0003), the
decision written with its log line, and ``waitingFor``'s join of the task at the cursor."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from klink import store
from klink.auth.tokens import Principal
from klink.deploy import plan as planner
from klink.deploy.approvals import Decisions
from klink.deploy.commands import Actor, Commands
from klink.deploy.context import Services
from klink.deploy.engine import Engine
from klink.deploy.model import Deployment
from klink.deploy.store import DeploymentStore
from klink.deploy.waiting import annotate
from klink.notify import Dispatcher
from klink.providers.base import TargetGroupSpec
from klink.testing.fake_provider import FakeProvider
from klink.testing.fake_sources import FakeConfig, FakeMetadata
from tests.deploy.conftest import FakeClock

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_an_approval_on_postgres(postgres_url: str) -> None:
    engine = store.create_engine(postgres_url)
    store.migrate(engine)
    db = DeploymentStore(engine)
    clock = FakeClock()
    fake = FakeProvider(pending_polls=1, delete_polls=0)
    fake.ensure_target_group(TargetGroupSpec(name="web", port=8080))
    fake.add_image("img-1", "search")
    metadata = FakeMetadata()
    metadata.envs["prod"] = {"provider": "local", "approvals": {"required": 1}}
    metadata.apps["search"] = {"contact": "t@example.com"}
    services = Services(
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
        clock=clock,
        decisions=Decisions(engine),
    )
    d = Deployment(
        "pg1", "search", "prod", "img-1", None, "ci", "m", plan=list(planner.PREPARATION)
    )
    db.create(d, clock())
    runner = Engine(db, services, clock=clock, sleep=clock.sleep)
    while runner.run_once():
        pass
    found = [db.get("pg1")]
    annotate(engine, found)
    assert found[0].summary()["waitingFor"] == "approvals 0 of 1 from deployer on prod"

    commands = Commands(db, lambda: services, clock)
    result = commands.approve(Actor("alice"), Principal("alice", "deployer"), "pg1", "looks right")
    assert result["waitingFor"] == "approvals 1 of 1 from deployer on prod"
    assert [(a["actor"], a["message"]) for a in result["approvals"]] == [("alice", "looks right")]
    runner.drain()
    assert db.get("pg1").status == "completed"
    assert "approved by alice (1 of 1): looks right" in [x["message"] for x in db.logs("pg1")]
    assert Decisions(engine)("pg1")[0].at == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    engine.dispose()
