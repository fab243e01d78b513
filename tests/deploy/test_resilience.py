"""Crashes between the cloud and the database at every action, every action run twice, and 20%
of provider calls failing transiently: the deployment ends the same, with nothing orphaned."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

import pytest

from klink.deploy.engine import Engine
from klink.deploy.executor import Executor, RetryPolicy, StepResult
from klink.deploy.store import DeploymentStore
from klink.testing.faults import FaultyProvider
from tests.deploy.conftest import IMG1, IMG2, World, deployed, ready

POLICY = {"name": "up", "scalingAdjustment": 1}
ALARM = {"name": "cpu", "metricName": "CPUUtilization", "threshold": 80, "policies": ["up"]}
PARAMS = {"policies": [POLICY], "alarms": [ALARM]}
FAST = RetryPolicy(budget=12, base=0.01, cap=0.05)


class Crash(Exception):
    """The engine process dies: after the action's provider calls, before its persist."""


class CrashingStore(DeploymentStore):
    def __init__(self, engine: Any, at: int) -> None:
        super().__init__(engine)
        self.at, self.crashed = at, False

    def persist(self, d: Any, **kwargs: Any) -> bool | None:
        task = kwargs.get("task")
        if not self.crashed and task is not None and task.seq == self.at:
            self.crashed = True
            raise Crash(task.action)
        return super().persist(d, **kwargs)


def _no_orphans(world: World, group: str) -> None:
    fake = world.fake
    assert world.groups() == [group]
    templates = set(fake.state["templates"])
    assert templates == {fake.describe_group(group).launch_template}
    ids = {i.id for i in fake.describe_group(group).instances}
    assert fake.serving("web") == ids
    assert {p.name for p in fake.list_scaling_policies(group)} == {"up"}
    assert {a.name for a in fake.list_alarms(group)} == {"cpu"}
    for kind in ("policies", "alarms"):
        assert {name for name, items in fake.state[kind].items() if items} == {group}, kind


def _crash_and_resume(world: World, deployment_id: str, at: int) -> None:
    store = CrashingStore(world.runtime.engine, at)
    crashing = Engine(
        store,
        world.services(),
        holder="dies",
        lease_seconds=30,
        clock=world.clock,
        sleep=world.clock.sleep,
    )
    with contextlib.suppress(Crash):
        crashing.drain()
    crashing.close()
    world.clock.sleep(31)  # the dead holder's lease runs out
    survivor = world.engine("survivor")
    survivor.drain()
    survivor.close()
    assert store.crashed, f"action {at} never ran: the plan is shorter"


def _plan_length(world: World) -> int:
    """The number of actions of the full red-black plan (v1 running, v2 coming)."""
    d = world.ok(
        "POST", "/deploy/search/prod", json={"image": IMG2, "message": "m", "dryRun": True}
    )
    return len(d["plan"])


DEPLOY_ACTIONS = 66  # the full red-black plan over weights with an old group (38 preparation + 28)
UNDO_ACTIONS = 29  # the old group deleted already: recreated, attached, traffic shifted back


@pytest.mark.parametrize("at", range(DEPLOY_ACTIONS))
def test_a_crash_after_any_action_of_a_deployment(world: World, at: int) -> None:
    ready(world, PARAMS)
    assert deployed(world, IMG1)["status"] == "completed"
    if at == 0:
        assert _plan_length(world) == DEPLOY_ACTIONS  # every action of the plan is covered
    deployment_id = world.deploy(IMG2)
    _crash_and_resume(world, deployment_id, at)
    d = world.get(deployment_id)
    assert d["status"] == "completed", (at, d["error"])
    _no_orphans(world, "search-prod-v001")
    assert world.fake.count("create_group") == 2  # v000, then exactly one new group


@pytest.mark.parametrize("at", range(UNDO_ACTIONS))
def test_a_crash_after_any_action_of_an_undo(world: World, at: int) -> None:
    ready(world, PARAMS)
    deployed(world, IMG1)
    deployment_id = world.deploy(IMG2)
    engine = world.engine()
    engine.drain()
    world.ok("POST", "/deploy/search/prod/undo")
    undoing = world.get(deployment_id)
    first_undo_step = undoing["cursor"]
    if at == 0:
        assert len(undoing["plan"]) - first_undo_step == UNDO_ACTIONS
    _crash_and_resume(world, deployment_id, first_undo_step + at)
    d = world.get(deployment_id)
    assert d["status"] == "completed", (at, d["error"])
    _no_orphans(world, "search-prod-v000")


class Twice(Executor):
    """Runs every action twice in a row and keeps the second outcome: idempotence, as a table."""

    def run(self, d: Any, step: Any, **kwargs: Any) -> StepResult:
        first = super().run(d, step, **kwargs)
        if first.ran and type(first.outcome).__name__ == "Done":
            return super().run(d, step, **kwargs)
        return first


V0, V1 = "search-prod-v000", "search-prod-v001"
TWICE_CASES = [
    ("first deployment", {}, False, [V0]),
    ("red-black", {}, True, [V1]),
    ("keep previous group", {"keepPreviousGroup": True}, True, [V0, V1]),
    ("with scaling", PARAMS, True, [V1]),
]


@pytest.mark.parametrize(
    ("params", "second", "groups"), [c[1:] for c in TWICE_CASES], ids=[c[0] for c in TWICE_CASES]
)
def test_every_action_run_twice_ends_the_same(
    world: World, params: dict[str, Any], second: bool, groups: list[str]
) -> None:
    ready(world, params)
    engine = world.engine()
    engine.executor = Twice(engine.services)
    first = world.deploy(IMG1)
    engine.drain()
    assert world.get(first)["status"] == "completed", world.get(first)["error"]
    if second:
        again = world.deploy(IMG2)
        engine.drain()
        assert world.get(again)["status"] == "completed", world.get(again)["error"]
        assert world.fake.count("create_group") == 2
    assert sorted(world.groups()) == groups
    in_traffic = V1 if second else V0
    ids = {i.id for i in world.fake.describe_group(in_traffic).instances}
    assert world.fake.serving("web") == ids


def test_twenty_deployments_with_a_fifth_of_provider_calls_failing(world: World) -> None:
    ready(world, PARAMS)
    faulty = FaultyProvider(world.fake, rate=0.2, seed=7)
    world.runtime.extras["deploy.services"] = lambda: replace(
        World.services(world), provider_for=lambda env, meta: faulty
    )
    engine = Engine(
        DeploymentStore(world.runtime.engine),
        world.runtime.extras["deploy.services"](),
        clock=world.clock,
        sleep=world.clock.sleep,
        retry=FAST,
    )
    images = [IMG1, IMG2]
    for number in range(20):
        deployment_id = world.deploy(images[number % 2])
        engine.drain()
        d = world.get(deployment_id)
        assert d["status"] == "completed", (number, d["error"])
    assert sum(faulty.failures.values()) > 50
    assert len(world.groups()) == 1
    print(f"\ninjected {sum(faulty.failures.values())} faults in {faulty.calls} provider calls")


WARM_UNDO_ACTIONS = 29  # the same undo steps; the old group is still there, warm at weight 0


def _until_warm(world: World, deployment_id: str) -> None:
    engine = world.engine()
    for _ in range(500):
        if world.get(deployment_id)["current"] == "keep_warm":
            return
        if not engine.run_once():
            world.clock.sleep(1)
    raise AssertionError("the deployment never reached keep_warm")


@pytest.mark.parametrize("at", range(WARM_UNDO_ACTIONS))
def test_a_crash_after_any_action_of_an_undo_while_warm(world: World, at: int) -> None:
    ready(world, PARAMS)
    deployed(world, IMG1)
    deployment_id = world.deploy(IMG2)
    _until_warm(world, deployment_id)
    world.ok("POST", "/deploy/search/prod/undo")
    undoing = world.get(deployment_id)
    first_undo_step = undoing["cursor"]
    if at == 0:
        assert len(undoing["plan"]) - first_undo_step == WARM_UNDO_ACTIONS
    _crash_and_resume(world, deployment_id, first_undo_step + at)
    d = world.get(deployment_id)
    assert d["status"] == "completed", (at, d["error"])
    _no_orphans(world, "search-prod-v000")
    assert world.fake.count("create_group") == 2  # the warm group was never recreated
