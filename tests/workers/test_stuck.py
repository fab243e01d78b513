"""No zombies (issue 19, part 3): a deployment whose holder is gone is taken by a live worker,
and one without progress for longer than the limit is reported once: ``GET /deploy/stuck``
with its action and why, a ``stuck:`` line in its log, a warning, a notification to its rooms,
and the ``klink_deployments_stuck`` gauge on ``/deploy/metrics``.

The deploy tests' world (the real app in-process, FakeProvider, a fake clock) on SQLite.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from klink import store
from klink.deploy.metrics import EngineMetrics
from klink.deploy.stuck import PREFIX, report_stuck
from klink.deploy.tables import deployments
from tests.deploy.conftest import FAST_PARAMS, IMG1, World, ready

ROOMS = {"deploymentRooms": {"prod": ["#deploys"]}}


def _stuck_events(world: World) -> list[dict[str, Any]]:
    return [
        body["event"]
        for url, body in world.notes.posted
        if url.endswith("/klink") and body["event"].get("event") == "stuck"
    ]


def _waiting_deployment(world: World) -> str:
    """search/prod whose instances never come into service, run until it waits on them."""
    ready(world, **ROOMS)
    world.fake.pending_polls = 10**6
    deployment_id = world.deploy(IMG1)
    engine = world.engine()
    for _ in range(15):  # 75 s of the fake clock: inside the wait's deadline (100 s)
        engine.run_once()
        world.clock.sleep(5)
    d = world.get(deployment_id)
    assert d["status"] == "running", d["error"]
    return deployment_id


def _abandoned(world: World, app: str = "books", minutes: int = 5) -> str:
    """A deployment whose holder died ``minutes`` ago: lease expired, due, nobody on it."""
    world.app(app=app, **ROOMS)
    world.config(app=app, params=FAST_PARAMS, props={"service.port": 8080})
    image = "img-" + app.encode().hex()[:12].rjust(12, "0")
    world.fake.add_image(image, app, "9.0")
    deployment_id = world.deploy(image, app=app)
    past = world.clock() - timedelta(minutes=minutes)
    with store.write(world.runtime.engine) as conn:
        conn.execute(
            deployments.update()
            .where(deployments.c.id == deployment_id)
            .values(lease_holder="gone:4242-abcdef", lease_expires=past, not_before=past)
        )
    return deployment_id


def test_stuck_deployments_are_listed_with_their_action_and_why(world: World) -> None:
    waiting = _waiting_deployment(world)
    abandoned = _abandoned(world)
    answer = world.ok("GET", "/deploy/stuck", params={"seconds": 60})
    assert answer["seconds"] == 60
    found = {r["id"]: r for r in answer["deployments"]}
    assert set(found) == {waiting, abandoned}

    w = found[waiting]
    tasks = world.ok("GET", f"/deploy/deployments/{waiting}/tasks")
    current = tasks["tasks"][tasks["cursor"]]
    assert w["kind"] == "waiting"
    assert w["action"] == current["action"]
    assert w["reason"].startswith(f"waiting on {current['action']} for ")
    assert w["reason"].endswith(f": {current['message']}")  # what the wait last saw
    assert w["seconds"] > 60

    a = found[abandoned]
    assert a["kind"] == "unclaimed"
    assert a["reason"] == (
        f"{a['action']}: lease of gone:4242-abcdef expired 5 min ago, no worker took it"
    )
    assert a["holder"] is None

    # A limit longer than both: nothing is stuck; a bad limit is a 400 naming the field.
    assert world.ok("GET", "/deploy/stuck", params={"seconds": 3600})["deployments"] == []
    bad = world.client.get("/deploy/stuck", params={"seconds": -1})
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "seconds"


def test_each_stuck_episode_is_reported_once_whoever_watches(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    waiting = _waiting_deployment(world)
    abandoned = _abandoned(world)
    engine = world.runtime.engine
    with caplog.at_level(logging.WARNING, logger="klink.deploy.stuck"):
        first = report_stuck(world.services(), engine, 60)
        # Two more rounds, as two other processes' watchers would run them.
        again = report_stuck(world.services(), engine, 60) + report_stuck(
            world.services(), engine, 60
        )
    assert {r.id for r in first} == {waiting, abandoned}
    assert again == []
    events = _stuck_events(world)
    assert sorted(e["id"] for e in events) == sorted([waiting, abandoned])
    warnings = [r.getMessage() for r in caplog.records if "stuck" in r.getMessage()]
    assert len(warnings) == 2
    for deployment_id in (waiting, abandoned):
        logs = world.ok("GET", f"/deploy/deployments/{deployment_id}/logs")["logs"]
        assert len([line for line in logs if line["message"].startswith(PREFIX)]) == 1

    # The gauge (KLINK_STUCK_SECONDS, 600 s by default) once both are older than that; the
    # waiting one's next look is due in a moment (a worker is polling it), the other is not.
    world.clock.sleep(700)
    with store.write(engine) as conn:
        conn.execute(
            deployments.update()
            .where(deployments.c.id == waiting)
            .values(not_before=world.clock() + timedelta(seconds=5))
        )
    metrics = world.client.get("/deploy/metrics").text
    assert 'klink_deployments_stuck{kind="waiting"} 1.0' in metrics
    assert 'klink_deployments_stuck{kind="unclaimed"} 1.0' in metrics
    assert 'klink_deployments{status="running"} 1.0' in metrics


def test_an_abandoned_deployment_is_taken_by_a_live_worker(world: World) -> None:
    ready(world, **ROOMS)
    abandoned = [_abandoned(world, app=f"app{n}", minutes=n + 1) for n in range(4)]
    seen = EngineMetrics()
    engine = world.engine()
    engine.observer = seen
    engine.drain()
    for deployment_id in abandoned:
        assert world.get(deployment_id)["status"] == "completed"
    takeovers = seen.takeovers.labels(engine.worker)._value.get()
    assert takeovers == len(abandoned)  # each claimed from a dead holder's expired lease
    assert world.ok("GET", "/deploy/stuck", params={"seconds": 1})["deployments"] == []
    with store.read(world.runtime.engine) as conn:
        left = conn.execute(
            sa.select(sa.func.count()).where(deployments.c.lease_holder.is_not(None))
        ).scalar()
    assert left == 0
