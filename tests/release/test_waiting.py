"""``waitingFor`` on deployments that are not moving, beyond the release gates: a pause point,
a health wait, a failure; and none on one that moves or has ended."""

from __future__ import annotations

from tests.release.conftest import IMG1, World, ready, settle, summary


def test_a_pause_point_says_where_it_paused(world: World) -> None:
    ready(world, {"pauseAfterInstancesHealthy": True})
    deployment_id = world.deploy(IMG1)
    world.engine().drain()
    d = summary(world, deployment_id)
    assert d["status"] == "paused"
    assert d["waitingFor"] == "paused at pauseAfterInstancesHealthy"
    world.ok("POST", "/deploy/search/prod/resume")
    assert summary(world, deployment_id)["waitingFor"] is None  # resumed: moving
    world.engine().drain()
    d = summary(world, deployment_id)
    assert (d["status"], d["waitingFor"]) == ("completed", None)


def test_a_health_wait_and_a_failure_say_what_they_wait_for(world: World) -> None:
    ready(world, {"instanceHealthyAttempts": 3})
    world.fake.make_unhealthy(IMG1)
    deployment_id = world.deploy(IMG1)
    engine = world.engine()
    for _ in range(50):
        settle(world)
        d = summary(world, deployment_id)
        if d["current"] == "wait_instances_healthy":
            break
        world.clock.sleep(1)
    assert d["waitingFor"] == (
        "0/1 instances healthy on port 8080 /healthcheck (wait_instances_healthy)"
    )
    engine.drain()
    d = summary(world, deployment_id)
    assert d["status"] == "failed"
    assert d["waitingFor"].startswith("failed at wait_instances_healthy: gave up after")
    assert d["waitingFor"].endswith("; undo, retry or unlock")
    in_progress = world.ok("GET", "/deploy/in-progress")["deployments"]
    assert in_progress[0]["waitingFor"] == d["waitingFor"]
