"""An engine never acts on a lease it may have lost (issue 19, part 2).

The persist guard already refuses the write of a holder that lost its lease; what must not
happen either is the next action's cloud calls. The dangerous moment is a write that commits
but whose answer reaches the worker only after its lease expired (a pause, a partition, a
stop-the-world): another worker has taken the deployment meanwhile. Here the store answers
late by construction (``LateAnswers``, a DeploymentStore whose ``persist`` lets the lease
expire and a rival claim before it returns), on a real PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from klink import store
from klink.deploy import plan as planner
from klink.deploy.engine import Engine
from klink.deploy.model import Deployment
from klink.deploy.observe import EngineObserver
from klink.deploy.store import DeploymentStore
from klink.providers.base import TargetGroupSpec
from klink.service.runtime import utcnow
from klink.testing.fake_provider import FakeProvider
from klink.testing.fake_sources import fake_services

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

LEASE = 30.0


class Starts(EngineObserver):
    def __init__(self) -> None:
        self.started: list[tuple[str, int]] = []
        self.lost: list[str] = []

    def action_started(
        self, worker: str, holder: str, deployment_id: str, seq: int, attempt: int
    ) -> None:
        self.started.append((holder, seq))

    def lease_lost(self, worker: str, deployment_id: str, reason: str) -> None:
        self.lost.append(reason)


class Clocks:
    """The wall clock both engines use and engine A's monotonic clock, both movable."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.mono = 1000.0

    def now(self) -> datetime:
        return utcnow() + timedelta(seconds=self.offset)

    def monotonic(self) -> float:
        return self.mono

    def jump(self, seconds: float) -> None:
        self.offset += seconds
        self.mono += seconds


class LateAnswers(DeploymentStore):
    """``persist`` commits, then (once, after action ``at``) time passes beyond the lease and
    ``rival`` claims the deployment before the answer comes back."""

    def __init__(self, engine: store.Engine, clocks: Clocks, at: int) -> None:
        super().__init__(engine)
        self.clocks, self.at = clocks, at
        self.rival: Engine | None = None
        self.rival_claim: str | None = None

    def persist(self, d: Deployment, **kwargs: object) -> bool | None:  # type: ignore[override]
        held = super().persist(d, **kwargs)  # type: ignore[arg-type]
        if held and d.cursor == self.at + 1 and self.rival_claim is None:
            assert self.rival is not None
            self.clocks.jump(LEASE + 1)
            self.rival_claim = self.rival.db.claim(self.rival.holder, self.clocks.now(), LEASE)
        return held


def test_an_answer_that_comes_after_the_lease_stops_the_engine_before_the_next_action(
    postgres_url: str,
) -> None:
    engine = store.create_engine(postgres_url)
    store.migrate(engine)
    fake = FakeProvider(pending_polls=0, delete_polls=0)
    fake.ensure_target_group(TargetGroupSpec(name="web", port=8080))
    fake.add_image("img-1", "search")
    clocks = Clocks()
    services = fake_services(fake, ["search"])
    seen = Starts()
    late = LateAnswers(engine, clocks, at=2)
    a = Engine(
        late,
        services,
        holder="engine-a",
        lease_seconds=LEASE,
        clock=clocks.now,
        monotonic=clocks.monotonic,
        observer=seen,
    )
    b = Engine(DeploymentStore(engine), services, holder="engine-b", clock=clocks.now)
    late.rival = b
    d = Deployment(
        id="d1",
        app="search",
        env="prod",
        image="img-1",
        commit=None,
        user="t",
        message="m",
        plan=list(planner.PREPARATION),
    )
    late.create(d, clocks.now())

    assert a.run_once() is True
    assert late.rival_claim == "d1"  # the rival took it while A's answer was on its way
    # A ran actions 0, 1, 2 and then stopped: action 3 belongs to B now.
    assert seen.started == [("engine-a", 0), ("engine-a", 1), ("engine-a", 2)]
    assert len(seen.lost) == 1  # it said why it stopped: its lease ran out meanwhile
    assert "left" in seen.lost[0]
    stored = late.get("d1")
    assert stored.cursor == 3
    b.work("d1")  # B holds the lease it claimed and finishes the deployment
    done = late.get("d1")
    assert done.status == "completed", done.error
    assert [t["seq"] for t in late.tasks("d1")] == list(range(len(done.plan)))
    engine.dispose()
