"""The pure shaping of the web UI: what a deployment waits for, which commands it offers, the
plan with pending actions, health, the overview grid, durations and diffs (tables of cases)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from klink.web import views

WAITING = [
    ({"status": "running", "current": "wait_instances_healthy"},
     [{"action": "wait_instances_healthy", "attempts": 3, "message": "1/2 healthy"}],
     "Waiting for the new instances to pass their health checks, attempt 3 (1/2 healthy)."),
    ({"status": "running", "current": "create_group"}, [],
     "Waiting for its action create_group."),
    ({"status": "preparing", "current": "read_application"}, [],
     "Preparation: its action read_application."),
    ({"status": "paused", "current": "resume_processes"},
     [{"action": "pause_point", "status": "done",
       "message": "pausing: pauseAfterInstancesHealthy"}],
     "A person to resume it: paused (pausing: pauseAfterInstancesHealthy); next is "
     "resume_processes."),
    ({"status": "failed", "current": "wait_instances_healthy", "error": "2 unhealthy"}, [],
     "A person: it failed at wait_instances_healthy (2 unhealthy). Retry it, undo it, or unlock "
     "the app+env to deploy again."),
    ({"status": "completed", "current": None}, [], "Nothing: it completed."),
    ({"status": "invalid", "current": None, "error": "no contact"}, [],
     "Nothing: it is invalid: no contact"),
    ({"status": "cancelled", "current": None}, [], "Nothing: it is cancelled."),
]  # fmt: skip


@pytest.mark.parametrize(("d", "tasks", "words"), WAITING)
def test_waiting_for(d: dict[str, Any], tasks: list[dict[str, Any]], words: str) -> None:
    assert views.waiting_for(d, tasks) == words


COMMANDS = [
    ("running", False, ["pause", "cancel", "undo"]),
    ("preparing", False, ["pause", "cancel"]),
    ("paused", False, ["resume", "cancel", "undo"]),
    ("failed", False, ["retry", "unlock", "undo"]),
    ("completed", False, ["undo"]),
    ("completed", True, []),
    ("invalid", False, []),
    ("cancelled", False, []),
]


@pytest.mark.parametrize(("status", "undo", "verbs"), COMMANDS)
def test_commands_offered(status: str, undo: bool, verbs: list[str]) -> None:
    found = views.commands({"app": "search", "env": "prod", "status": status, "undo": undo})
    assert [verb for verb, _line in found] == verbs
    for verb, line in found:
        assert line.startswith(f"klink {verb} search prod")


def test_plan_rows_include_pending_actions() -> None:
    plan = [{"name": "a", "phase": "prepare"}, {"name": "b", "phase": "deploy"}]
    tasks = [{"seq": 0, "action": "a", "phase": "prepare", "status": "done", "attempts": 1}]
    rows = views.plan_rows(plan, tasks)
    assert [(r["action"], r["status"], r["attempts"]) for r in rows] == [
        ("a", "done", 1),
        ("b", "pending", 0),
    ]


def test_health_and_grid() -> None:
    boxes = [{"health": "Healthy"}, {"health": "healthy"}, {"health": "Unhealthy"}]
    assert views.health(boxes, 2) == {"healthy": 2, "total": 3, "desired": 2, "ok": True}
    assert views.health(boxes, 3)["ok"] is False
    assert views.health([], None)["ok"] is False
    grid = views.grid(
        [{"name": "a"}, {"name": "b"}],
        [{"name": "dev"}, {"name": "prod"}],
        [{"app": "a", "env": "prod", "version": "1"}],
        [{"app": "b", "env": "dev", "id": "x"}],
    )
    cells = {(r["app"], c["env"]): c for r in grid for c in r["cells"]}
    assert cells["a", "prod"]["run"] == {"app": "a", "env": "prod", "version": "1"}
    assert cells["b", "dev"]["moving"] == {"app": "b", "env": "dev", "id": "x"}
    assert cells["a", "dev"]["run"] is None


def test_durations_and_diffs() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert views.duration(3.25) == "3.2 s"
    assert views.duration(90) == "90 s"
    assert views.duration(600) == "10 min"
    assert views.ago("2026-01-01T11:00:00+00:00", now) == "60 min ago"
    assert views.between("2026-01-01T11:00:00+00:00", None, now) == "60 min"
    assert views.between(None, None, now) == ""
    assert views.params_diff({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": None}) == [
        {"key": "b", "a": 2, "b": 3},
        {"key": "c", "a": None, "b": None},
    ]
    diff = views.text_diff("x\ny\n", "x\nz\n", "a", "b")
    assert "-y\n+z\n" in diff
    assert views.text_diff("same\n", "same\n", "a", "b") == ""
    assert views.digest((1, 2)) == views.digest((1, 2)) != views.digest((1, 3))
