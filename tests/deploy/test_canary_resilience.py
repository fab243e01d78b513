"""A canary survives crashes between the cloud and the database after every action, of a canary
that passes and of one that fails and is undone by itself, and every action run twice: one new
group in the end (or none), no baseline, template, policy or alarm left behind."""

from __future__ import annotations

from typing import Any

import pytest

from klink.testing.fake_metric_source import FakeMetricSource
from tests.deploy.conftest import IMG1, IMG2, World, deployed, ready
from tests.deploy.test_resilience import PARAMS, Twice, _crash_and_resume, _no_orphans

V0, V1, V2 = "search-prod-v000", "search-prod-v001", "search-prod-v002"
CANARY = {
    **PARAMS,
    "strategy": "canary",
    "keepWarmSeconds": 0,
    "canary": {"intervals": 2, "intervalSeconds": 30},
}
CANARY_ACTIONS = 95  # preparation, both groups, 2 judgements, promotion, baseline out, old out
JUDGED_AT = 60  # the first judgement, which fails: the undo's 39 actions follow the plan's 95
UNDO_ACTIONS = 39
FAILED_ACTIONS = JUDGED_AT + 1 + UNDO_ACTIONS


def _start(world: World, bad: bool = False) -> str:
    ready(world, CANARY)
    world.metrics = FakeMetricSource()
    if bad:
        world.metrics.worse(V1, "error-rate", 0.05)
    assert deployed(world, IMG1)["status"] == "completed"
    return world.deploy(IMG2)


@pytest.mark.parametrize("at", range(CANARY_ACTIONS))
def test_a_crash_after_any_action_of_a_canary(world: World, at: int) -> None:
    deployment_id = _start(world)
    _crash_and_resume(world, deployment_id, at)
    d = world.get(deployment_id)
    if at == 0:
        assert len(d["plan"]) == CANARY_ACTIONS  # every action of the plan is covered
    assert d["status"] == "completed", (at, d["error"])
    assert not d["undo"], (at, d["error"])
    _no_orphans(world, V1)
    assert world.fake.count("create_group") == 3  # v000, then the canary and its baseline once


@pytest.mark.parametrize("at", range(FAILED_ACTIONS))
def test_a_crash_after_any_action_of_a_failing_canary_and_its_undo(world: World, at: int) -> None:
    deployment_id = _start(world, bad=True)
    seq = at if at <= JUDGED_AT else CANARY_ACTIONS + at - JUDGED_AT - 1
    _crash_and_resume(world, deployment_id, seq)
    d = world.get(deployment_id)
    if at == 0:
        assert len(d["plan"]) == CANARY_ACTIONS + UNDO_ACTIONS
        assert [s["name"] for s in d["plan"]].index("analyse_canary") == JUDGED_AT
    assert d["status"] == "completed", (at, d["error"])
    assert d["undo"], (at, d["error"])
    _no_orphans(world, V0)
    assert world.fake.count("create_group") == 3


def test_every_action_of_a_canary_run_twice_ends_the_same(world: World) -> None:
    ready(world, CANARY)
    world.metrics = FakeMetricSource()
    engine = world.engine()
    engine.executor = Twice(engine.services)
    for image in (IMG1, IMG2):
        deployment_id = world.deploy(image)
        engine.drain()
        d: dict[str, Any] = world.get(deployment_id)
        assert d["status"] == "completed", d["error"]
        assert not d["undo"], d["error"]
    assert world.fake.count("create_group") == 3
    _no_orphans(world, V1)
