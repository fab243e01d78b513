"""Traffic by weight in the engine, on the FakeProvider (which records every call that changes
something): red-black's one shift, the undo while warm that is one call, the migration from
groups registered directly, rolling steps with their pauses, and every shift in the log."""

from __future__ import annotations

from typing import Any

import pytest

from klink.providers.base import GroupSpec, LaunchTemplateSpec
from tests.deploy.conftest import IMG1, IMG2, World, deployed, ready

V0, V1 = "search-prod-v000", "search-prod-v001"
ROLLING = {
    "strategy": "rolling",
    "rolling": {"steps": [{"weight": 10, "pauseSeconds": 30}, {"weight": 50, "pause": True}, 100]},
}


def until(world: World, deployment_id: str, action: str, status: str | None = None) -> None:
    """Run the engine (sleeping on the fake clock) until the cursor is at ``action``."""
    engine = world.engine()
    for _ in range(1000):
        d = world.get(deployment_id)
        if d["current"] == action and (status is None or d["status"] == status):
            return
        if not engine.run_once():
            world.clock.sleep(1)
    raise AssertionError(f"never reached {action}: {world.get(deployment_id)['current']}")


def logs(world: World, deployment_id: str) -> list[str]:
    found = world.ok("GET", f"/deploy/deployments/{deployment_id}/logs")["logs"]
    return [str(line["message"]) for line in found]


def weights(world: World) -> dict[str, int]:
    return world.fake.traffic("web").weights()


def test_red_black_shifts_once_and_keeps_the_old_group_warm(world: World) -> None:
    ready(world, {"desiredCapacity": 2, "max": 2})
    deployed(world, IMG1)
    assert world.fake.describe_group(V0).target_groups == ()  # a member by weight, not direct
    mark = len(world.fake.calls)
    deployment_id = world.deploy(IMG2)
    until(world, deployment_id, "keep_warm")
    assert weights(world) == {V0: 0, V1: 100}
    assert world.fake.serving("web") == {i.id for i in world.fake.describe_group(V1).instances}
    assert [c for c in world.fake.calls[mark:] if c[0] == "set_traffic"] == [("set_traffic", "web")]
    world.clock.sleep(59)
    world.engine().drain()
    d = world.get(deployment_id)
    assert d["status"] == "completed", d["error"]
    assert weights(world) == {V1: 100}
    assert world.groups() == [V1]
    lines = logs(world, deployment_id)
    assert f"shift_traffic: traffic on web: {V1} 100, {V0} 0" in lines
    assert f"keep_warm: {V0} kept warm 60 s" in lines


def test_undo_while_warm_is_one_set_traffic_call_before_anything_else(world: World) -> None:
    ready(world, {"desiredCapacity": 2, "max": 2})
    deployed(world, IMG1)
    deployment_id = world.deploy(IMG2)
    until(world, deployment_id, "keep_warm")
    mark = len(world.fake.calls)
    world.ok("POST", "/deploy/search/prod/undo", json={"message": "v2 is slow"})
    world.engine().drain()
    d = world.get(deployment_id)
    assert d["status"] == "completed", d["error"]
    calls = world.fake.calls[mark:]
    assert calls[0] == ("set_traffic", "web")  # the first change of all
    assert [c for c in calls if c[0] == "set_traffic"] == [("set_traffic", "web")]
    assert world.fake.count("create_group") == 2  # the warm group was not recreated
    assert weights(world) == {V0: 100}
    assert world.groups() == [V0]
    assert f"restore_traffic_if_warm: traffic on web: {V0} 100, {V1} 0 (undo while warm)" in logs(
        world, deployment_id
    )


def test_undo_after_the_old_group_is_gone_goes_step_by_step(world: World) -> None:
    ready(world, {"keepWarmSeconds": 0})
    deployed(world, IMG1)
    deployment_id = world.deploy(IMG2)
    world.engine().drain()
    world.ok("POST", "/deploy/search/prod/undo")
    world.engine().drain()
    d = world.get(deployment_id)
    assert d["status"] == "completed", d["error"]
    assert world.fake.count("create_group") == 3  # v000 recreated from its recorded state
    assert weights(world) == {V0: 100}
    assert any("is not warm behind web" in line for line in logs(world, deployment_id))


def _direct_group(world: World) -> None:
    """v000 deployed the pre-weights way: registered with ``web`` directly, no traffic tag."""
    fake = world.fake
    fake.create_launch_template(
        LaunchTemplateSpec(
            name="search-prod-v000", image_id=IMG1, instance_type="local", user_data=""
        )
    )
    fake.create_group(
        GroupSpec(
            name=V0,
            launch_template="search-prod-v000",
            min_size=1,
            max_size=1,
            desired_capacity=1,
            target_groups=("web",),
            tags={"klink:app": "search", "klink:env": "prod"},
        )
    )
    fake.resize_group(V0, min_size=1, max_size=1, desired_capacity=1)
    for _ in range(5):
        fake.describe_group(V0)  # pending -> in service
    fake.register_instances("web", [i.id for i in fake.describe_group(V0).instances])


def test_a_group_registered_directly_migrates_to_weights_without_a_gap(world: World) -> None:
    ready(world)
    _direct_group(world)
    old_ids = world.fake.serving("web")
    assert len(old_ids) == 1
    deployment_id = world.deploy(IMG2)
    until(world, deployment_id, "keep_warm")
    assert weights(world) == {"web": 0, V1: 100}  # the direct member is the old one
    assert f"shift_traffic: traffic on web: {V1} 100, web 0" in logs(world, deployment_id)
    world.clock.sleep(61)
    world.engine().drain()
    assert world.get(deployment_id)["status"] == "completed"
    assert world.fake.state["registered"]["web"] == []  # direct registrations taken out
    assert world.groups() == [V1]
    assert world.get(deployment_id)["previousState"]["weighted"] is False


def test_undo_while_warm_back_to_a_direct_group(world: World) -> None:
    ready(world)
    _direct_group(world)
    deployment_id = world.deploy(IMG2)
    until(world, deployment_id, "keep_warm")
    mark = len(world.fake.calls)
    world.ok("POST", "/deploy/search/prod/undo")
    world.engine().drain()
    assert world.get(deployment_id)["status"] == "completed"
    assert world.fake.calls[mark] == ("set_traffic", "web")
    assert (
        world.fake.count("set_traffic")
        - sum(1 for c in world.fake.calls[:mark] if c[0] == "set_traffic")
        == 1
    )
    assert weights(world) == {"web": 100}
    assert world.groups() == [V0]


def test_rolling_steps_shift_hold_and_pause(world: World) -> None:
    ready(world, ROLLING)
    deployed(world, IMG1)
    deployment_id = world.deploy(IMG2)
    until(world, deployment_id, "hold_traffic")
    assert weights(world) == {V0: 90, V1: 10}
    world.engine().drain()  # runs to the pause point of the 50 % step
    paused = world.get(deployment_id)
    assert paused["status"] == "paused"
    assert weights(world) == {V0: 50, V1: 50}
    world.ok("POST", "/deploy/search/prod/resume")
    world.engine().drain()
    d = world.get(deployment_id)
    assert d["status"] == "completed", d["error"]
    assert weights(world) == {V1: 100}
    shifts = [line for line in logs(world, deployment_id) if "traffic on web" in line]
    assert shifts == [
        f"shift_traffic: traffic on web: {V1} 10, {V0} 90",
        f"shift_traffic: traffic on web: {V1} 50, {V0} 50",
        f"shift_traffic: traffic on web: {V1} 100, {V0} 0",
    ]


@pytest.mark.parametrize("stop", ["hold_traffic", "paused", "keep_warm"])
def test_rolling_undo_at_any_step_is_one_call(world: World, stop: str) -> None:
    ready(world, ROLLING)
    deployed(world, IMG1)
    deployment_id = world.deploy(IMG2)
    if stop == "hold_traffic":
        until(world, deployment_id, stop)
    else:
        world.engine().drain()
        assert world.get(deployment_id)["status"] == "paused"
    if stop == "keep_warm":
        world.ok("POST", "/deploy/search/prod/resume")
        until(world, deployment_id, stop)
    mark = len(world.fake.calls)
    world.ok("POST", "/deploy/search/prod/undo")
    world.engine().drain()
    assert world.get(deployment_id)["status"] == "completed"
    calls = world.fake.calls[mark:]
    assert calls[0] == ("set_traffic", "web")
    assert sum(1 for c in calls if c[0] == "set_traffic") == 1
    assert weights(world) == {V0: 100}
    assert world.groups() == [V0]


def test_rolling_plan_reaches_the_dry_run(world: World) -> None:
    ready(world, ROLLING)
    deployed(world, IMG1)
    dry: dict[str, Any] = world.ok(
        "POST", "/deploy/search/prod", json={"image": IMG2, "message": "m", "dryRun": True}
    )
    steps = [(s["name"], s["args"]) for s in dry["plan"] if s["phase"] == "deploy"]
    assert ("shift_traffic", {"weight": 10}) in steps
    assert ("hold_traffic", {"seconds": 30, "weight": 10}) in steps
    assert ("pause_point", {"reason": "rolling step 50%"}) in steps
    assert ("keep_warm", {"seconds": 60}) in steps
