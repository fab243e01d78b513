"""The engine on FakeProvider: a whole red-black deployment through the real API and store."""

from __future__ import annotations

from klink.deploy import plan as planner
from tests.deploy.conftest import FAST_PARAMS, IMG1, World, ready


def test_first_then_second_deployment(world: World) -> None:
    world.app()
    world.config(params=FAST_PARAMS, props={"service.port": 8080, "x.y": "z"})
    world.fake.add_image("img-000000000001", "search", "1.0")
    world.fake.add_image("img-000000000002", "search", "2.0")

    first = world.deploy("img-000000000001")
    world.engine().drain()
    d1 = world.get(first)
    assert d1["status"] == "completed", d1["error"]
    assert world.groups() == ["search-prod-v000"]
    assert d1["previousState"] is None

    second = world.deploy("img-000000000002")
    world.engine().drain()
    d2 = world.get(second)
    assert d2["status"] == "completed", d2["error"]
    assert world.groups() == ["search-prod-v001"]
    assert d2["previousState"]["name"] == "search-prod-v000"
    assert d2["previousState"]["image_id"] == "img-000000000001"
    names = [s["name"] for s in d2["plan"]]
    assert names[: len(planner.PREPARATION)] == planner.names(planner.PREPARATION)
    assert "delete_old_group" in names
    assert 60 <= len(names) <= 80
    registered = world.fake.serving("web")
    new_ids = {i.id for i in world.fake.describe_group("search-prod-v001").instances}
    assert set(registered) == new_ids


def test_an_idle_engine_thread_wakes_when_the_api_creates_a_deployment(world: World) -> None:
    """The idle poll here is a minute: only the API's wake-up can start the work in time."""
    import time

    from klink.deploy.engine import EngineThreads

    ready(world)
    runner = EngineThreads(lambda: world.engine("woken"), 1, idle=60.0)
    runner.start()
    world.runtime.extras["deploy.wake"] = runner.wake
    try:
        time.sleep(0.2)  # the thread has looked once and is idle
        deployment_id = world.deploy(IMG1)
        for _ in range(100):
            if world.get(deployment_id)["cursor"] > 0:
                break
            time.sleep(0.05)
        assert world.get(deployment_id)["cursor"] > 0
    finally:
        world.runtime.extras.pop("deploy.wake", None)
        runner.stop(timeout=5)
