"""Deployment windows and freezes, on a fake clock (Sunday 2026-03-01 12:00 UTC): a deployment
requested outside a window or inside a freeze waits at ``await_window``, saying when it opens,
and goes when it does; ``windowWait: false`` refuses it instead; an admin may override with a
reason (recorded); undo and rollback are never held."""

from __future__ import annotations

from tests.release.conftest import (
    IMG1,
    IMG2,
    World,
    at,
    logs,
    person,
    ready,
    rule,
    settle,
    summary,
)

WEEKDAYS = [{"days": ["Mon-Fri"], "from": "09:00", "to": "17:00", "timezone": "Europe/London"}]
HOLIDAYS = [{"from": "2026-03-01T00:00:00Z", "to": "2026-03-02T10:30:00Z", "reason": "migration"}]


def test_outside_the_window_it_waits_until_it_opens(world: World) -> None:
    ready(world)
    rule(world, "windows", WEEKDAYS)
    deployment_id = world.deploy(IMG1)
    settle(world)
    d = summary(world, deployment_id)
    assert (d["status"], d["current"]) == ("preparing", "await_window")
    assert d["waitingFor"] == "window opens Mon 09:00 Europe/London"
    assert world.fake.count("create_group") == 0
    at(world, "2026-03-02T08:59:00+00:00")
    assert world.get(deployment_id)["current"] == "await_window"
    at(world, "2026-03-02T09:00:00+00:00")
    world.engine().drain()
    d = world.get(deployment_id)
    assert d["status"] == "completed", d["error"]
    assert "await_window: inside the deployment window" in logs(world, deployment_id)


def test_inside_the_window_it_goes_at_once(world: World) -> None:
    ready(world)
    rule(world, "windows", [{**WEEKDAYS[0], "days": ["Sun"]}])
    deployment_id = world.deploy(IMG1)
    world.engine().drain()
    assert world.get(deployment_id)["status"] == "completed"


def test_no_window_wait_refuses_outside_the_window(world: World) -> None:
    ready(world)
    rule(world, "windows", WEEKDAYS)
    response = world.client.post(
        "/deploy/search/prod", json={"image": IMG1, "message": "now", "windowWait": False}
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["field"] == "window"
    assert "window opens Mon 09:00 Europe/London" in error["message"]
    assert world.ok("GET", "/deploy/deployments")["deployments"] == []
    world.clock.now = world.clock.now.replace(day=2, hour=10)
    accepted = world.client.post(
        "/deploy/search/prod", json={"image": IMG1, "message": "now", "windowWait": False}
    )
    assert accepted.status_code == 201, accepted.text


def test_a_freeze_holds_until_it_ends_then_the_window(world: World) -> None:
    ready(world)
    rule(world, "windows", WEEKDAYS)
    rule(world, "freezes", HOLIDAYS)
    deployment_id = world.deploy(IMG1)
    settle(world)
    assert (
        summary(world, deployment_id)["waitingFor"]
        == "frozen: migration; opens Mon 10:30 Europe/London"
    )
    at(world, "2026-03-02T10:00:00+00:00")  # inside the window, still frozen
    assert world.get(deployment_id)["current"] == "await_window"
    at(world, "2026-03-02T10:30:00+00:00")
    world.engine().drain()
    assert world.get(deployment_id)["status"] == "completed"


def test_a_freeze_declared_while_waiting_for_approval_holds_it(world: World) -> None:
    ready(world)
    rule(world, "approvals", {"required": 1})
    deployment_id = world.deploy(IMG1)
    settle(world)
    rule(world, "freezes", HOLIDAYS)
    alice = person(world, "alice")
    alice.post(f"/deploy/deployments/{deployment_id}/approve", json={"message": "ok"})
    settle(world)
    d = summary(world, deployment_id)
    assert (d["current"], d["waitingFor"]) == (
        "await_window",
        "frozen: migration; opens Mon 10:30 UTC",
    )
    assert world.fake.count("create_group") == 0


def test_an_admin_overrides_a_window_with_a_reason(world: World) -> None:
    ready(world)
    rule(world, "windows", WEEKDAYS)
    deployment_id = world.deploy(IMG1)
    settle(world)
    path = f"/deploy/deployments/{deployment_id}/override"
    deployer = person(world, "dev", "deployer")
    assert deployer.post(path, json={"message": "please"}).status_code == 403
    response = world.client.post(path, json={"message": "security fix"})
    assert response.status_code == 200, response.text
    world.engine().drain()
    d = world.get(deployment_id)
    assert d["status"] == "completed", d["error"]
    assert [(a["decision"], a["actor"], a["message"]) for a in d["approvals"]] == [
        ("override", "admin", "security fix")
    ]
    lines = logs(world, deployment_id)
    assert "window and freezes overridden by admin: security fix" in lines
    assert (
        "await_window: window opens Mon 09:00 Europe/London: overridden by admin: security fix"
        in lines
    )


def test_undo_and_rollback_are_never_held(world: World) -> None:
    ready(world)
    world.deploy(IMG1)
    world.engine().drain()
    second = world.deploy(IMG2)
    world.engine().drain()
    rule(world, "freezes", HOLIDAYS)
    rule(world, "windows", WEEKDAYS)
    world.ok("POST", "/deploy/search/prod/undo", json={"message": "bad build"})
    world.engine().drain()
    undone = world.get(second)
    assert (undone["status"], undone["undo"]) == ("completed", True)
    assert world.groups() == ["search-prod-v000"]


def test_rollback_is_never_held(world: World) -> None:
    ready(world)
    world.deploy(IMG1)
    world.engine().drain()
    world.deploy(IMG2)
    world.engine().drain()
    rule(world, "freezes", HOLIDAYS)
    response = world.client.post("/deploy/search/prod/rollback", json={"message": "back"})
    assert response.status_code == 201, response.text
    world.engine().drain()
    d = world.get(response.json()["id"])
    assert d["status"] == "completed", d["error"]
    assert "await_window: a rollback is never held by a window" in logs(world, d["id"])
