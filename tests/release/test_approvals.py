"""Approvals, on a fake clock: a deployment to an environment that requires them prepares,
then waits at ``await_approval`` with nothing changed in the cloud until enough distinct
people with the right role approve; a rejection or an expiry ends it ``cancelled`` with the
reason; every decision is stored and in the deployment's history."""

from __future__ import annotations

from typing import Any

from tests.release.conftest import (
    IMG1,
    IMG2,
    World,
    later,
    logs,
    person,
    ready,
    rule,
    settle,
    summary,
)

ONE = {"required": 1}


def waiting(world: World, approvals: dict[str, Any] | None = None) -> str:
    ready(world)
    rule(world, "approvals", approvals or ONE)
    deployment_id = world.deploy(IMG1)
    settle(world)
    return deployment_id


def test_waits_at_await_approval_with_nothing_changed(world: World) -> None:
    deployment_id = waiting(world)
    d = summary(world, deployment_id)
    assert d["status"] == "preparing"
    assert d["current"] == "await_approval"
    assert d["waitingFor"] == "approvals 0 of 1 from deployer on prod"
    assert world.fake.count("create_group") == 0
    assert world.fake.count("create_launch_template") == 0
    assert world.groups() == []
    # Waiting holds no worker and no lease: the deployment is not due again for a while.
    assert not world.engine().run_once()


def test_a_second_person_approves_and_it_goes_on(world: World) -> None:
    deployment_id = waiting(world)
    alice = person(world, "alice")
    response = alice.post(f"/deploy/deployments/{deployment_id}/approve", json={"message": "lgtm"})
    assert response.status_code == 200, response.text
    assert response.json()["waitingFor"] == "approvals 1 of 1 from deployer on prod"
    world.engine().drain()
    d = world.get(deployment_id)
    assert d["status"] == "completed", d["error"]
    assert world.groups() == ["search-prod-v000"]
    assert [(a["decision"], a["actor"], a["role"], a["message"]) for a in d["approvals"]] == [
        ("approve", "alice", "deployer", "lgtm")
    ]
    assert d["approvals"][0]["at"] == "2026-03-01T12:00:00+00:00"
    assert "approved by alice (1 of 1): lgtm" in logs(world, deployment_id)
    assert "await_approval: approved by alice" in logs(world, deployment_id)


def test_the_requester_cannot_approve_their_own_deployment(world: World) -> None:
    deployment_id = waiting(world)
    response = world.client.post(
        f"/deploy/deployments/{deployment_id}/approve", json={"message": "mine"}
    )
    assert response.status_code == 403
    assert "notTheRequester" in response.json()["error"]["message"]
    assert world.get(deployment_id)["approvals"] == []


def test_the_requester_may_approve_when_the_rule_allows_it(world: World) -> None:
    deployment_id = waiting(world, {"required": 1, "notTheRequester": False})
    world.ok("POST", f"/deploy/deployments/{deployment_id}/approve", json={"message": "solo"})
    world.engine().drain()
    assert world.get(deployment_id)["status"] == "completed"


def test_distinct_people_count_once_each(world: World) -> None:
    deployment_id = waiting(world, {"required": 2})
    alice, bob = person(world, "alice"), person(world, "bob")
    path = f"/deploy/deployments/{deployment_id}/approve"
    assert alice.post(path, json={"message": "one"}).status_code == 200
    settle(world)
    d = summary(world, deployment_id)
    assert (d["status"], d["waitingFor"]) == ("preparing", "approvals 1 of 2 from deployer on prod")
    again = alice.post(path, json={"message": "again"})
    assert again.status_code == 409
    assert "already approved" in again.json()["error"]["message"]
    assert world.fake.count("create_group") == 0
    assert bob.post(path, json={"message": "two"}).status_code == 200
    world.engine().drain()
    assert world.get(deployment_id)["status"] == "completed"


def test_approvers_need_one_of_the_roles(world: World) -> None:
    deployment_id = waiting(world, {"required": 1, "roles": ["admin"]})
    path = f"/deploy/deployments/{deployment_id}/approve"
    for who in (person(world, "dora", "deployer"), person(world, "rita", "reader")):
        response = who.post(path, json={"message": "ok"})
        assert response.status_code == 403, response.text
        assert "admin on prod" in response.json()["error"]["message"]
    ops = person(world, "ops", "admin")
    assert ops.post(path, json={"message": "ok"}).status_code == 200


def test_a_deployer_of_another_environment_cannot_approve(world: World) -> None:
    deployment_id = waiting(world)
    poke_only = person(world, "pat", "deployer", envs=["poke"])
    response = poke_only.post(
        f"/deploy/deployments/{deployment_id}/approve", json={"message": "ok"}
    )
    assert response.status_code == 403


def test_a_rejection_ends_it_cancelled_with_the_reason(world: World) -> None:
    deployment_id = waiting(world)
    bob = person(world, "bob")
    response = bob.post(
        f"/deploy/deployments/{deployment_id}/reject", json={"message": "not during the sale"}
    )
    assert response.status_code == 200, response.text
    d = world.get(deployment_id)
    assert d["status"] == "cancelled"
    assert d["error"] == "rejected by bob: not during the sale"
    assert d["waitingFor"] is None
    assert [(a["decision"], a["actor"]) for a in d["approvals"]] == [("reject", "bob")]
    assert "rejected by bob: not during the sale: cancelled" in logs(world, deployment_id)
    settle(world)
    assert world.fake.count("create_group") == 0
    # The slot is free again: the next deployment is accepted.
    assert (
        world.client.post(
            "/deploy/search/prod", json={"image": IMG2, "message": "next"}
        ).status_code
        == 201
    )
    # Nothing to approve or reject any more.
    late = bob.post(f"/deploy/deployments/{deployment_id}/approve", json={"message": "oops"})
    assert late.status_code == 409


def test_an_unapproved_deployment_expires_cancelled(world: World) -> None:
    deployment_id = waiting(world, {"required": 1, "expiresAfter": "4h"})
    later(world, 4 * 3600 - 60)
    assert world.get(deployment_id)["status"] == "preparing"
    later(world, 120)
    d = world.get(deployment_id)
    assert d["status"] == "cancelled"
    assert d["error"] == "approval expired after 4h: approvals 0 of 1 from deployer on prod"
    assert world.fake.count("create_group") == 0
    assert (
        world.client.post(
            "/deploy/search/prod", json={"image": IMG2, "message": "again"}
        ).status_code
        == 201
    )


def test_an_approval_wait_has_no_health_deadline(world: World) -> None:
    """Instance health gives up after its attempts times its interval (here 100 s): a wait
    for people must not."""
    deployment_id = waiting(world)
    later(world, 3 * 3600)
    d = world.get(deployment_id)
    assert (d["status"], d["current"]) == ("preparing", "await_approval")
    alice = person(world, "alice")
    alice.post(f"/deploy/deployments/{deployment_id}/approve", json={"message": "finally"})
    world.engine().drain()
    assert world.get(deployment_id)["status"] == "completed"


def test_a_paused_wait_says_who_paused_it_and_why(world: World) -> None:
    deployment_id = waiting(world)
    world.ok("POST", "/deploy/search/prod/pause", json={"message": "checking dashboards"})
    d = summary(world, deployment_id)
    assert d["status"] == "paused"
    assert d["waitingFor"] == "paused by admin: checking dashboards"
    assert "paused by admin: checking dashboards" in logs(world, deployment_id)
    world.ok("POST", "/deploy/search/prod/resume")
    settle(world)
    assert summary(world, deployment_id)["waitingFor"] == "approvals 0 of 1 from deployer on prod"


def test_an_environment_without_approvals_does_not_wait(world: World) -> None:
    ready(world)
    deployment_id = world.deploy(IMG1)
    world.engine().drain()
    d = world.get(deployment_id)
    assert d["status"] == "completed"
    response = world.client.post(
        f"/deploy/deployments/{deployment_id}/approve", json={"message": "x"}
    )
    assert response.status_code == 409


def test_a_rollback_needs_no_approval(world: World) -> None:
    ready(world)
    world.deploy(IMG1)
    world.engine().drain()
    world.deploy(IMG2)
    world.engine().drain()
    rule(world, "approvals", ONE)
    response = world.client.post("/deploy/search/prod/rollback", json={"message": "back"})
    assert response.status_code == 201, response.text
    world.engine().drain()
    d = world.get(response.json()["id"])
    assert d["status"] == "completed", d["error"]
    assert d["image"] == IMG1
    assert "await_approval: a rollback needs no approval" in logs(world, d["id"])


def test_a_message_is_required_to_decide(world: World) -> None:
    deployment_id = waiting(world)
    alice = person(world, "alice")
    response = alice.post(f"/deploy/deployments/{deployment_id}/approve", json={"message": " "})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "message"


def test_under_the_global_lock_reject_goes_and_approve_does_not(world: World) -> None:
    deployment_id = waiting(world)
    world.ok("POST", "/deploy/lock", json={"message": "incident"})
    alice = person(world, "alice")
    refused = alice.post(f"/deploy/deployments/{deployment_id}/approve", json={"message": "ok"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "locked"
    rejected = alice.post(f"/deploy/deployments/{deployment_id}/reject", json={"message": "no"})
    assert rejected.status_code == 200, rejected.text
    assert world.get(deployment_id)["status"] == "cancelled"


def test_a_rejection_while_an_engine_runs_the_gate_is_applied_when_it_ends() -> None:
    """A deployment leased by an engine is not changed under it: the rejection is recorded as
    a request and applied by the holder at the action boundary, through the state machine."""
    from klink.deploy import controls
    from klink.deploy.model import Deployment

    d = Deployment("d1", "search", "prod", IMG1, None, "admin", "m")
    lines, due = controls.reject(d, True, "bob: no")
    assert (d.status, d.control, due) == ("preparing", "reject:bob: no", False)
    assert lines == ["rejection by bob: no: applied after the running action"]
    assert controls.apply_requested(d, d.control) == ["rejected by bob: no: cancelled"]
    assert (d.status, d.error, d.control) == ("cancelled", "rejected by bob: no", None)
    late = Deployment("d2", "search", "prod", IMG1, None, "admin", "m")
    controls.reject(late, True, "bob: no")
    late.status, late.phase = "running", "deploy"  # the engine finished preparing meanwhile
    assert controls.apply_requested(late, late.control or "") == [
        "rejection by bob: no came too late: the deployment phase had begun"
    ]
    assert late.status == "running"


def test_the_gates_end_preparation_after_every_read() -> None:
    from klink.deploy import plan as planner
    from klink.deploy.actions.registry import actions

    names = planner.names(planner.PREPARATION)
    gates = names.index("await_approval")
    assert names[gates : gates + 3] == ["await_approval", "await_window", "complete_preparation"]
    registry = actions()
    assert all(registry[name].reads for name in names[:gates])  # nothing before them writes
    assert not registry["await_approval"].reads  # a dry run shows them; it never waits
    assert not registry["await_window"].reads


def test_a_dry_run_shows_the_gates_without_waiting(world: World) -> None:
    ready(world)
    rule(world, "approvals", ONE)
    result = world.ok(
        "POST", "/deploy/search/prod", json={"image": IMG1, "message": "m", "dryRun": True}
    )
    shown = {s["name"]: s["runs"] for s in result["plan"]}
    assert shown["await_approval"] == "when deployed"
    assert shown["build_new_state"] == "now"


def test_the_rooms_are_told_once_that_it_waits(world: World) -> None:
    ready(world, deploymentRooms={"prod": ["#search"]})
    rule(world, "approvals", ONE)
    deployment_id = world.deploy(IMG1)
    settle(world)
    later(world, 600)  # ten more looks
    events = [
        body
        for _, body in world.notes.posted
        if isinstance(body.get("event"), dict) and body["event"]["event"] == "waiting"
    ]
    assert len(events) == 1  # the webhook's; the Slack body says the same in its text
    assert events[0]["event"]["deployment"] == deployment_id
    assert deployment_id in events[0]["text"]
    assert "approvals 0 of 1 from deployer on prod" in events[0]["text"]
