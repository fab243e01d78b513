"""Human controls on FakeProvider: pause, resume, cancel, retry, undo, rollback, lock."""

from __future__ import annotations

from dataclasses import replace

from klink.deploy.store import DeploymentStore
from tests.deploy.conftest import IMG1, IMG2, World, deployed, ready


def _in_service_ids(world: World, group: str) -> set[str]:
    return {i.id for i in world.fake.describe_group(group).instances}


def test_health_gate_failure_keeps_old_serving_then_retry_completes(world: World) -> None:
    ready(world, {"instanceHealthyAttempts": 3})
    assert deployed(world, IMG1)["status"] == "completed"
    world.fake.make_unhealthy(IMG2)
    d = deployed(world, IMG2)
    assert d["status"] == "failed"
    assert d["current"] == "wait_instances_healthy"
    assert "gave up after" in d["error"]
    assert "(limit 3 s)" in d["error"]  # 3 looks x the 1 s interval: a deadline on the clock
    # v1 is still the one in traffic; the slot is kept: a new deployment is refused.
    assert world.fake.serving("web") == _in_service_ids(world, "search-prod-v000")
    refused = world.client.post("/deploy/search/prod", json={"image": IMG1, "message": "m"})
    assert refused.status_code == 409
    assert refused.json()["error"]["field"] == "app"
    world.fake.state["unhealthy_images"].clear()
    world.ok("POST", "/deploy/search/prod/retry")
    world.engine().drain()
    done = world.get(d["id"])
    assert done["status"] == "completed"
    assert world.groups() == ["search-prod-v001"]


def test_undo_restores_old_group_and_removes_new(world: World) -> None:
    ready(world, {"instanceHealthyAttempts": 2, "desiredCapacity": 3, "max": 3})
    deployed(world, IMG1)
    old_ids = _in_service_ids(world, "search-prod-v000")
    world.fake.make_unhealthy(IMG2)
    failed = deployed(world, IMG2)
    assert failed["status"] == "failed"
    assert world.groups() == ["search-prod-v001", "search-prod-v000"]
    dry = world.ok("POST", "/deploy/search/prod/undo", json={"dryRun": True})
    assert dry["groups"]["enable"] == "search-prod-v000"
    assert dry["groups"]["remove"] == "search-prod-v001"
    assert dry["groups"]["create"] is None  # the old group still exists
    calls_before = len(world.fake.calls)
    world.ok("POST", "/deploy/search/prod/undo", json={"message": "bad build"})
    world.engine().drain()
    undone = world.get(failed["id"])
    assert undone["status"] == "completed"
    assert undone["undo"] is True
    assert world.groups() == ["search-prod-v000"]
    assert _in_service_ids(world, "search-prod-v000") == old_ids  # restored, not relaunched
    assert world.fake.serving("web") == old_ids
    assert world.fake.count("create_group") == 2  # v000 and v001, none for the undo
    undo_calls = [c for c, _ in world.fake.calls[calls_before:] if c != "poll"]
    assert "resize_group" not in undo_calls
    # The slot is free again.
    assert world.client.get("/deploy/in-progress").json()["deployments"] == []


def test_undo_costs_the_same_for_1_or_8_instances(world: World) -> None:
    counts = []
    for app, size in (("small", 1), ("large", 8)):
        world.app(app)
        params = {"instanceHealthyAttempts": 2, "desiredCapacity": size, "max": size}
        world.config(
            app, params={"healthCheckIntervalSeconds": 1, "targetGroups": ["web"], **params}
        )
        world.fake.add_image(f"img-{app}00001", app)
        world.fake.add_image(f"img-{app}00002", app)
        deployed(world, f"img-{app}00001", app=app)
        world.fake.make_unhealthy(f"img-{app}00002")
        deployed(world, f"img-{app}00002", app=app)
        before = len(world.fake.calls)
        world.ok("POST", f"/deploy/{app}/prod/undo")
        world.engine().drain()
        counts.append(len([c for c, _ in world.fake.calls[before:] if c != "poll"]))
    assert counts[0] == counts[1]


def test_undo_on_failure_runs_by_itself(world: World) -> None:
    ready(world, {"instanceHealthyAttempts": 2, "undoOnFailure": True})
    deployed(world, IMG1)
    world.fake.make_unhealthy(IMG2)
    d = deployed(world, IMG2)
    assert d["undo"] is True
    assert d["status"] == "completed"
    assert world.groups() == ["search-prod-v000"]
    logs = world.ok("GET", f"/deploy/deployments/{d['id']}/logs")["logs"]
    assert any("undoOnFailure" in line["message"] for line in logs)


def test_undo_of_first_deployment_removes_the_group(world: World) -> None:
    ready(world, {"instanceHealthyAttempts": 2})
    world.fake.make_unhealthy(IMG1)
    d = deployed(world, IMG1)
    assert d["status"] == "failed"
    world.ok("POST", "/deploy/search/prod/undo")
    world.engine().drain()
    assert world.get(d["id"])["status"] == "completed"
    assert world.groups() == []


def test_pause_while_waiting_then_resume(world: World) -> None:
    ready(world)
    deployment_id = world.deploy(IMG1)
    engine = world.engine()
    while engine.run_once():  # runs until the first wait (instances pending)
        pass
    waiting = world.get(deployment_id)
    assert waiting["status"] == "running"
    assert waiting["current"] == "wait_instances_in_service"
    paused = world.ok("POST", "/deploy/search/prod/pause")
    assert paused["status"] == "paused"
    world.clock.sleep(60)
    assert engine.run_once() is False
    assert world.get(deployment_id)["cursor"] == waiting["cursor"]
    world.ok("POST", "/deploy/search/prod/resume")
    engine.drain()
    assert world.get(deployment_id)["status"] == "completed"


def test_pause_requested_during_an_action_takes_effect_after_it(world: World) -> None:
    ready(world)
    deployment_id = world.deploy(IMG1)
    engine = world.engine()
    assert engine.db.claim(engine.holder, world.clock(), 30) == deployment_id
    answer = world.ok("POST", "/deploy/search/prod/pause")
    assert answer["status"] == "preparing"  # requested, not yet applied
    engine.work(deployment_id)
    d = world.get(deployment_id)
    assert d["status"] == "paused"
    assert d["cursor"] == 1


def test_cancel_waiting_deployment_fails_it_and_keeps_the_slot(world: World) -> None:
    ready(world)
    deployment_id = world.deploy(IMG1)
    engine = world.engine()
    while engine.run_once():
        pass
    world.ok("POST", "/deploy/search/prod/cancel")
    d = world.get(deployment_id)
    assert d["status"] == "failed"
    assert "cancelled by" in d["error"]
    world.clock.sleep(60)
    assert engine.run_once() is False
    world.ok("POST", "/deploy/search/prod/undo")
    engine.drain()
    assert world.groups() == []


def test_cancel_before_preparation_releases_the_slot(world: World) -> None:
    ready(world)
    deployment_id = world.deploy(IMG1)
    world.ok("POST", "/deploy/search/prod/cancel")
    assert world.get(deployment_id)["status"] == "cancelled"
    assert world.deploy(IMG1) != deployment_id


def test_rollback_deploys_previous_image_and_commit(world: World) -> None:
    first_commit = ready(world)
    deployed(world, IMG1)
    second_commit = world.config(props={"service.port": 8080, "feature": "on"})
    assert deployed(world, IMG2)["commit"] == second_commit
    dry = world.ok("POST", "/deploy/search/prod/rollback", json={"dryRun": True})
    assert dry["image"] == IMG1
    assert dry["groups"]["create"] == "search-prod-v002"
    answer = world.client.post("/deploy/search/prod/rollback", json={"message": "oops"})
    assert answer.status_code == 201
    world.engine().drain()
    d = world.get(answer.json()["id"])
    assert d["status"] == "completed"
    assert d["kind"] == "rollback"
    assert d["image"] == IMG1
    assert d["commit"] == first_commit
    assert world.groups() == ["search-prod-v002"]


def test_rollback_with_kept_group_reenables_it(world: World) -> None:
    ready(world, {"keepPreviousGroup": True})
    deployed(world, IMG1)
    deployed(world, IMG2)
    kept = world.fake.describe_group("search-prod-v000")
    assert kept.tags["klink:kept"] == "true"
    assert "Launch" in kept.suspended_processes
    assert kept.desired_capacity == 1
    creates = world.fake.count("create_group")
    answer = world.client.post("/deploy/search/prod/rollback", json={"message": "back"})
    world.engine().drain()
    d = world.get(answer.json()["id"])
    assert d["status"] == "completed", d["error"]
    assert world.fake.count("create_group") == creates  # re-enabled, not recreated
    back = world.fake.describe_group("search-prod-v000")
    assert back.suspended_processes == frozenset()
    assert world.fake.serving("web") == {i.id for i in back.instances}


def test_redeploy_uses_last_image_and_newest_config(world: World) -> None:
    ready(world)
    deployed(world, IMG1)
    newest = world.config(props={"service.port": 8080, "more": "yes"})
    answer = world.client.post("/deploy/search/prod/redeploy", json={"message": "config"})
    world.engine().drain()
    d = world.get(answer.json()["id"])
    assert (d["status"], d["image"], d["commit"]) == ("completed", IMG1, newest)


def test_global_lock_closes_every_mutation(world: World) -> None:
    ready(world)
    world.ok("POST", "/deploy/lock", json={"message": "freeze for the holidays"})
    refused = world.client.post("/deploy/search/prod", json={"image": IMG1, "message": "m"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "locked"
    assert "holidays" in refused.json()["error"]["message"]
    world.ok("DELETE", "/deploy/lock")
    assert world.deploy(IMG1)


def test_admin_unlock_frees_a_failed_deployment_slot(world: World) -> None:
    ready(world, {"instanceHealthyAttempts": 1})
    world.fake.make_unhealthy(IMG1)
    d = deployed(world, IMG1)
    assert d["status"] == "failed"
    world.ok("POST", "/deploy/search/prod/unlock")
    assert world.deploy(IMG2)


def test_pause_points_and_instructions(world: World) -> None:
    ready(world, {"pauseAfterInstancesHealthy": True}, instructions="check the dashboard")
    deployed(world, IMG1)
    d = world.get(world.client.get("/deploy/in-progress").json()["deployments"][0]["id"])
    assert d["status"] == "paused"
    assert d["plan"][d["cursor"] - 1]["args"]["reason"] == "pauseAfterInstancesHealthy"
    world.ok("POST", "/deploy/search/prod/resume")
    world.engine().drain()
    d = world.get(d["id"])
    assert d["status"] == "paused"
    logs = world.ok("GET", f"/deploy/deployments/{d['id']}/logs")["logs"]
    assert any("instructions: check the dashboard" in line["message"] for line in logs)
    world.ok("POST", "/deploy/search/prod/resume")
    world.engine().drain()
    assert world.get(d["id"])["status"] == "completed"


def test_lease_takeover_after_holder_dies(world: World) -> None:
    ready(world)
    deployment_id = world.deploy(IMG1)
    dead, alive = world.engine("dead", lease=30), world.engine("alive", lease=30)
    assert dead.db.claim("dead", world.clock(), 30) == deployment_id
    assert alive.run_once() is False  # the lease is held
    world.clock.sleep(31)
    assert alive.run_once() is True
    alive.drain()
    assert world.get(deployment_id)["status"] == "completed"
    # The dead holder's late write is refused: it no longer holds the lease.
    d = DeploymentStore(world.runtime.engine).get(deployment_id)
    held = dead.db.persist(
        d,
        holder="dead",
        expected_status=d.status,
        now=world.clock(),
        lease_seconds=30,
        task=None,
        logs=["late"],
        not_before=None,
        release=True,
        apply_control=lambda d, c: [],
    )
    assert held is None


def test_undo_recreates_an_old_group_already_deleted(world: World) -> None:
    ready(world)
    deployed(world, IMG1)
    old = world.fake.describe_group("search-prod-v000")
    world.fake.delete_polls = 3  # the old group takes a few looks to disappear
    deployment_id = world.deploy(IMG2)
    engine = world.engine()
    for _ in range(200):
        if world.get(deployment_id)["current"] == "wait_old_group_gone":
            break
        if not engine.run_once():
            world.clock.sleep(1)
    world.ok("POST", "/deploy/search/prod/cancel")
    assert world.get(deployment_id)["status"] == "failed"
    world.ok("POST", "/deploy/search/prod/undo")
    engine.drain()
    d = world.get(deployment_id)
    assert d["status"] == "completed", d["error"]
    assert world.groups() == ["search-prod-v000"]
    back = world.fake.describe_group("search-prod-v000")
    assert world.fake.count("create_group") == 3  # v000, v001, then v000 again
    assert {i.id for i in back.instances}.isdisjoint({i.id for i in old.instances})
    template = world.fake.describe_launch_template(back.launch_template or "")
    assert template.image_id == IMG1
    assert world.fake.serving("web") == {i.id for i in back.instances}


def test_lease_renewed_during_a_slow_action(world: World) -> None:
    """An action slower than the lease keeps it: no second engine runs it meanwhile."""
    import threading

    ready(world)
    deployment_id = world.deploy(IMG1)
    slow = world.engine("slow", lease=0.3)
    rival = world.engine("rival", lease=0.3)
    registry = slow.executor.registry
    original = registry["validate_request"].run
    release = threading.Event()

    def sluggish(ctx):  # type: ignore[no-untyped-def]
        release.wait(5)
        return original(ctx)

    slow.executor.registry = {
        **registry,
        "validate_request": replace(registry["validate_request"], run=sluggish),
    }
    worker = threading.Thread(target=slow.run_once)
    worker.start()
    import time

    for _ in range(8):  # well past the 0.3 s lease, in real time; the fake clock follows
        time.sleep(0.1)
        world.clock.sleep(0.1)
        assert rival.run_once() is False
    release.set()
    worker.join(10)
    slow.close()
    assert world.get(deployment_id)["cursor"] >= 1


def test_only_the_latest_kept_group_stays(world: World) -> None:
    ready(world, {"keepPreviousGroup": True})
    deployed(world, IMG1)
    first_template = world.fake.describe_group("search-prod-v000").launch_template
    deployed(world, IMG2)
    d = deployed(world, IMG1)
    assert d["status"] == "completed", d["error"]
    assert world.groups() == ["search-prod-v002", "search-prod-v001"]
    assert world.fake.describe_group("search-prod-v001").tags["klink:kept"] == "true"
    assert first_template not in world.fake.state["templates"]
    assert len(world.fake.state["templates"]) == 2


def test_undo_of_the_last_completed_deployment(world: World) -> None:
    ready(world)
    first = deployed(world, IMG1)
    assert world.client.post("/deploy/search/prod/undo").status_code == 409  # first: v000 only
    second = deployed(world, IMG2)
    dry = world.ok("POST", "/deploy/search/prod/undo", json={"dryRun": True})
    assert dry["groups"]["create"] == "search-prod-v000"  # deleted: recreated from its state
    assert dry["groups"]["remove"] == "search-prod-v001"
    answer = world.ok("POST", "/deploy/search/prod/undo", json={"message": "back"})
    assert answer["id"] == second["id"]
    assert world.client.post("/deploy/search/prod/undo").status_code == 409  # in progress
    world.engine().drain()
    d = world.get(second["id"])
    assert d["status"] == "completed"
    assert d["undo"] is True
    assert world.groups() == ["search-prod-v000"]
    group = world.fake.describe_group("search-prod-v000")
    assert world.fake.describe_launch_template(group.launch_template or "").image_id == IMG1
    again = world.client.post("/deploy/search/prod/undo")
    assert again.status_code == 409
    assert "rollback" in again.json()["error"]["message"]
    assert first["status"] == "completed"


def test_kept_groups_are_removed_when_their_time_is_up(world: World) -> None:
    from datetime import timedelta

    from klink.deploy.expiry import remove_expired

    ready(world, {"keepPreviousGroup": True}, deploymentRooms={"prod": ["#search"]})
    deployed(world, IMG1)
    assert deployed(world, IMG2)["status"] == "completed"
    kept = world.fake.describe_group("search-prod-v000")
    assert kept.tags["klink:kept"] == "true"
    assert "klink:remove-after" in kept.tags
    store = DeploymentStore(world.runtime.engine)
    assert remove_expired(world.services(), store) == []  # not yet
    assert world.fake.group_exists("search-prod-v000")
    world.clock.now += timedelta(days=8)
    sent = len(world.notes.posted)
    assert remove_expired(world.services(), store) == ["search-prod-v000"]
    assert world.fake.describe_group("search-prod-v000").status is not None  # being deleted
    assert any(call == ("delete_group", "search-prod-v000") for call in world.fake.calls)
    assert world.fake.group_exists("search-prod-v001")  # the one in traffic stays
    assert any("removed" in str(body) for _url, body in world.notes.posted[sent:])
