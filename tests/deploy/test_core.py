"""The deploy core's defects, each reproduced: the state machine against the lease, the global
lock, the one parameter model, undo with the restored group's own gate, the dry run as the same
run, waits apart from errors, and preparation errors that end a deployment."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest

from klink.deploy import lifecycle
from klink.deploy.model import ACTIVE, STATUSES
from klink.deploy.store import DeploymentStore
from klink.errors import Conflict, KlinkError, Throttled
from tests.deploy.conftest import IMG1, IMG2, World, deployed, ready


def _services(world: World, **changes: Any) -> None:
    """Replace some of the engine's collaborators for this test (the rest stay real)."""
    world.runtime.extras["deploy.services"] = lambda: replace(World.services(world), **changes)
    world.services = lambda: replace(World.services(world), **changes)  # type: ignore[method-assign]


# The state machine as a table -----------------------------------------------------------------

# (status, phase, control, lease held?) -> the status after, "requested" (applied by the holder
# at the action boundary) or "refused".
CONTROL_TABLE = [
    ("running", "deploy", "pause", True, "requested"),
    ("running", "deploy", "pause", False, "paused"),
    ("preparing", "prepare", "pause", False, "paused"),
    ("running", "deploy", "cancel", True, "requested"),
    ("running", "deploy", "cancel", False, "failed"),
    ("preparing", "prepare", "cancel", False, "cancelled"),
    ("paused", "prepare", "cancel", False, "cancelled"),
    ("paused", "deploy", "cancel", False, "failed"),
    ("paused", "deploy", "resume", False, "running"),
    ("paused", "prepare", "resume", False, "preparing"),
    ("running", "deploy", "resume", False, "refused"),
    ("failed", "deploy", "retry", False, "running"),
    ("completed", "deploy", "retry", False, "refused"),
    ("failed", "deploy", "undo", False, "running"),
    ("paused", "deploy", "undo", False, "running"),
    ("running", "deploy", "undo", True, "requested"),
    ("preparing", "prepare", "undo", False, "refused"),
    ("running", "deploy", "unlock", True, "refused"),
    ("running", "deploy", "unlock", False, "refused"),
    ("preparing", "prepare", "unlock", False, "refused"),
    ("failed", "deploy", "unlock", False, "cancelled"),
    ("paused", "deploy", "unlock", False, "cancelled"),
]


@pytest.mark.parametrize(("status", "phase", "control", "leased", "outcome"), CONTROL_TABLE)
def test_control_table(status: str, phase: str, control: str, leased: bool, outcome: str) -> None:
    from klink.deploy import controls
    from klink.deploy.model import Deployment, GroupState

    old = GroupState("a-b-v000", None, 1, 1, 1).to_json()
    d = Deployment(
        "d1", "a", "b", "img", None, "u", "m", status=status, phase=phase, previous_state=old
    )
    run = {
        "pause": lambda: controls.pause(d, leased, "ops"),
        "resume": lambda: controls.resume(d, "ops"),
        "cancel": lambda: controls.cancel_request(d, leased, "ops"),
        "retry": lambda: controls.retry(d, "ops", lambda seq: None),
        "undo": lambda: controls.undo(d, leased, "ops"),
        "unlock": lambda: controls.unlock(d, "ops"),
    }[control]
    if outcome == "refused":
        with pytest.raises(Conflict):
            run()
        assert d.status == status
        return
    run()
    if outcome == "requested":
        assert d.status == status
        assert d.control is not None
        assert d.control.startswith(control)
    else:
        assert d.status == outcome


def test_every_status_is_in_the_table_and_no_final_status_has_a_way_out() -> None:
    seen = {t.status for t in lifecycle.TRANSITIONS} | {t.to for t in lifecycle.TRANSITIONS}
    assert seen == set(STATUSES)
    for final in ("invalid", "cancelled"):
        assert lifecycle.allowed(final, "deploy") == []
        assert lifecycle.allowed(final, "prepare") == []


def test_unlock_while_an_action_runs_is_refused_and_nothing_runs_twice(world: World) -> None:
    """Unlock during a running action used to free the slot; the engine then wrote its copy back
    (the status came back to life) and a second deployment of the same app+env ran beside it."""
    ready(world)
    deployment_id = world.deploy(IMG1)
    engine = world.engine()
    registry = engine.executor.registry
    entered, release = threading.Event(), threading.Event()
    original = registry["read_application"].run

    def slow(ctx: Any) -> Any:
        entered.set()
        release.wait(10)
        return original(ctx)

    engine.executor.registry = {
        **registry,
        "read_application": replace(registry["read_application"], run=slow),
    }
    worker = threading.Thread(target=engine.run_once)
    worker.start()
    try:
        assert entered.wait(10)
        refused = world.client.post("/deploy/search/prod/unlock")
        assert refused.status_code == 409
        assert "pause or cancel it first" in refused.json()["error"]["message"]
        second = world.client.post("/deploy/search/prod", json={"image": IMG2, "message": "m"})
        assert second.status_code == 409
    finally:
        release.set()
        worker.join(10)
    engine.drain()
    assert world.get(deployment_id)["status"] == "completed"
    assert len(world.ok("GET", "/deploy/deployments")["deployments"]) == 1


def test_a_persist_never_overwrites_a_status_it_did_not_set(world: World) -> None:
    """Whatever changes the stored status under a held lease, the holder's write is refused."""
    ready(world)
    deployment_id = world.deploy(IMG1)
    db = DeploymentStore(world.runtime.engine)
    assert db.claim("holder", world.clock(), 30) == deployment_id
    d = db.get(deployment_id)
    import sqlalchemy as sa

    from klink import store
    from klink.deploy.tables import deployments

    with store.write(world.runtime.engine) as conn:
        conn.execute(
            deployments.update().where(deployments.c.id == deployment_id).values(status="cancelled")
        )
    d.cursor = 5
    held = db.persist(
        d,
        holder="holder",
        expected_status="preparing",
        now=world.clock(),
        lease_seconds=30,
        task=None,
        logs=["should not be written"],
        not_before=None,
        release=False,
        apply_control=lambda d, c: [],
    )
    assert held is None
    after = db.get(deployment_id)
    assert after.status == "cancelled"
    assert after.cursor == 0
    with store.read(world.runtime.engine) as conn:
        holder = conn.execute(
            sa.select(deployments.c.lease_holder).where(deployments.c.id == deployment_id)
        ).scalar()
    assert holder is None


# The global lock ---------------------------------------------------------------------------


def test_the_global_lock_stops_new_work_but_never_pause_cancel_or_undo(world: World) -> None:
    ready(world)
    deployed(world, IMG1)
    deployment_id = world.deploy(IMG2)
    engine = world.engine()
    while engine.run_once():  # to the first wait
        pass
    world.ok("POST", "/deploy/lock", json={"message": "freeze for the sale"})
    refused = world.client.post("/deploy/search/prod/redeploy", json={"message": "m"})
    assert refused.status_code == 409
    assert "freeze for the sale" in refused.json()["error"]["message"]
    resize = world.client.post(
        "/deploy/search/prod/resize", json={"min": 1, "max": 1, "desired": 1}
    )
    assert resize.status_code == 409
    assert world.ok("POST", "/deploy/search/prod/pause")["status"] == "paused"
    resume = world.client.post("/deploy/search/prod/resume")
    assert resume.status_code == 409
    assert resume.json()["error"]["code"] == "locked"
    assert world.ok("POST", "/deploy/search/prod/cancel")["status"] == "failed"
    retry = world.client.post("/deploy/search/prod/retry")
    assert retry.status_code == 409
    assert world.ok("POST", "/deploy/search/prod/undo")["status"] == "running"
    engine.drain()
    assert world.get(deployment_id)["status"] == "completed"
    assert world.groups() == ["search-prod-v000"]


# One parameter model: an empty list means none ---------------------------------------------

POLICY = {"name": "up", "scalingAdjustment": 1}


def test_empty_policy_alarm_and_schedule_lists_remove_them(world: World) -> None:
    alarm = {"name": "cpu", "metricName": "CPUUtilization", "threshold": 80, "policies": ["up"]}
    scheduled = {"name": "night", "recurrence": "0 22 * * *", "desiredCapacity": 1}
    ready(world, {"policies": [POLICY], "alarms": [alarm], "scheduledActions": [scheduled]})
    deployed(world, IMG1)
    assert [p.name for p in world.fake.list_scaling_policies("search-prod-v000")] == ["up"]
    world.config(
        params={
            "healthCheckIntervalSeconds": 1,
            "targetGroups": ["web"],
            "policies": [],
            "alarms": [],
            "scheduledActions": [],
        }
    )
    d = deployed(world, IMG2)
    assert d["status"] == "completed", d["error"]
    assert world.fake.list_scaling_policies("search-prod-v001") == []
    assert world.fake.list_alarms("search-prod-v001") == []
    assert world.fake.list_scheduled_actions("search-prod-v001") == []


def test_absent_lists_carry_the_previous_groups_over(world: World) -> None:
    ready(world, {"policies": [POLICY]})
    deployed(world, IMG1)
    world.config(params={"healthCheckIntervalSeconds": 1, "targetGroups": ["web"]})
    assert deployed(world, IMG2)["status"] == "completed"
    assert [p.name for p in world.fake.list_scaling_policies("search-prod-v001")] == ["up"]


# Undo restores what was ---------------------------------------------------------------------


def test_undo_checks_the_restored_group_with_its_own_port_and_path(world: World) -> None:
    """A new config with a wrong health path fails at the health gate; its undo must probe the
    old group on the old path (it used to probe with the new config's, and failed too)."""
    probed: list[str] = []

    def probe(url: str) -> bool:
        probed.append(url)
        return url.endswith(":8080/healthcheck")

    _services(world, probe=probe)
    world.fake.http_probes = True  # type: ignore[misc]
    ready(world, {"instanceHealthyAttempts": 3})
    assert deployed(world, IMG1)["status"] == "completed"
    world.config(props={"service.port": 8080, "healthcheck.path": "/wrong"})
    failed = deployed(world, IMG2)
    assert failed["status"] == "failed"
    assert failed["current"] == "wait_instances_healthy"
    probed.clear()
    world.ok("POST", "/deploy/search/prod/undo")
    world.engine().drain()
    undone = world.get(failed["id"])
    assert undone["status"] == "completed", undone["error"]
    assert probed
    assert all(url.endswith(":8080/healthcheck") for url in probed)
    assert world.groups() == ["search-prod-v000"]


# The dry run is the same run ------------------------------------------------------------------


def test_dry_run_then_the_real_deployment_have_the_same_steps(world: World) -> None:
    ready(world, {"keepPreviousGroup": True, "pauseAfterInstancesHealthy": True})
    deployed(world, IMG1)
    world.ok("POST", "/deploy/search/prod/resume")
    world.engine().drain()
    sent = len(world.notes.posted)
    dry = world.ok(
        "POST", "/deploy/search/prod", json={"image": IMG2, "message": "m", "dryRun": True}
    )
    assert len(world.notes.posted) == sent  # notify_start is shown, not run
    assert {s["name"]: s["runs"] for s in dry["plan"]}["notify_start"] == "when deployed"
    deployment_id = world.deploy(IMG2)
    engine = world.engine()
    engine.drain()
    world.ok("POST", "/deploy/search/prod/resume")
    engine.drain()
    real = world.get(deployment_id)
    assert real["status"] == "completed", real["error"]
    dry_steps = [(s["name"], s["phase"], s["args"]) for s in dry["plan"]]
    real_steps = [(s["name"], s["phase"], s["args"]) for s in real["plan"]]
    assert len(dry_steps) == len(real_steps)
    for index, (shown, ran) in enumerate(zip(dry_steps, real_steps, strict=True)):
        assert shown == ran, index
    assert dry["planHash"] == real["planHash"]


def test_a_transient_error_in_a_dry_run_is_retried_like_in_the_engine(world: World) -> None:
    ready(world)
    config = World.services(world).config
    failures = [1]

    class Flaky:
        def file(self, app: str, env: str, name: str, at: str) -> Any:
            if failures and name == "deployment-params.json":
                failures.pop()
                raise KlinkError("config service answered 500")
            return config.file(app, env, name, at)

    _services(world, config=Flaky())
    dry = world.ok(
        "POST", "/deploy/search/prod", json={"image": IMG1, "message": "m", "dryRun": True}
    )
    assert dry["dryRun"] is True
    assert not failures


# Waits and errors apart -----------------------------------------------------------------------


class ThrottleAt:
    """Wraps the fake: ``describe_group`` raises Throttled on the calls numbered in ``at``."""

    def __init__(self, inner: Any, at: set[int]) -> None:
        self.inner, self.at, self.count = inner, at, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def describe_group(self, name: str) -> Any:
        self.count += 1
        if self.count in self.at:
            raise Throttled("Rate exceeded")
        return self.inner.describe_group(name)


def test_a_throttle_late_in_a_long_wait_never_fails_the_deployment(world: World) -> None:
    """Waits and errors shared one attempt counter: a Throttled after 30 polls failed it."""
    ready(world)
    world.fake.pending_polls = 45  # instances stay Pending for 45 looks
    throttled = ThrottleAt(world.fake, at={40, 41, 43})
    _services(world, provider_for=lambda env, meta: throttled)
    d = deployed(world, IMG1)
    assert d["status"] == "completed", d["error"]
    assert throttled.count > 45
    tasks = world.ok("GET", f"/deploy/deployments/{d['id']}/tasks")["tasks"]
    assert all(t["status"] == "done" for t in tasks)


def test_errors_that_keep_failing_in_preparation_end_it_invalid(world: World) -> None:
    """It used to stay preparing, retrying, holding the slot, resolving HEAD again each time."""
    ready(world)
    config = World.services(world).config
    heads: list[str] = []

    class Broken:
        def file(self, app: str, env: str, name: str, at: str) -> Any:
            if at == "HEAD":
                heads.append(name)
                return config.file(app, env, name, at)
            if name == "deployment-params.json":
                raise KlinkError("config service answered 500")
            return config.file(app, env, name, at)

    _services(world, config=Broken())
    d = deployed(world, IMG1)
    assert d["status"] == "invalid"
    assert "gave up after 9 errors in a row" in d["error"]
    assert heads == ["application-properties.json"]  # the commit is resolved once, never again
    assert d["status"] not in ACTIVE
    again = world.client.post("/deploy/search/prod", json={"image": IMG1, "message": "m"})
    assert again.status_code == 201  # the slot is free


def test_a_commit_that_is_not_a_ref_is_refused_before_anything_is_stored(world: World) -> None:
    """``HEAD;id`` was accepted (201) and left invalid, while its dry run answered 400."""
    ready(world)
    for dry in (False, True):
        body = {"image": IMG1, "message": "m", "commit": "HEAD;id", "dryRun": dry}
        refused = world.client.post("/deploy/search/prod", json=body)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["field"] == "commit"
    assert world.ok("GET", "/deploy/deployments")["deployments"] == []
