"""The plan builder as a table: (params, previous state) -> the deployment phase's actions."""

from __future__ import annotations

from typing import Any

import pytest

from klink.deploy import plan as planner
from klink.deploy.model import GroupState
from klink.deploy.params import DeployParams, read_params

OLD = GroupState(name="search-prod-v001", launch=None, min_size=1, max_size=1, desired_capacity=1)
NEW = GroupState(name="search-prod-v002", launch=None, min_size=1, max_size=1, desired_capacity=1)

LAUNCH = [
    "create_launch_template",
    "create_group",
    "resize_group",
    "wait_instances_exist",
    "wait_instances_in_service",
    "suspend_launch_terminate",
]
HEALTH = ["wait_instances_healthy"]
TRAFFIC = ["resume_processes", "register_target_groups", "wait_target_groups_healthy"]
SCALING = ["create_policies", "create_alarms", "create_scheduled_actions", "tag_group_deployed"]
DRAIN = ["suspend_old_processes", "deregister_old_instances", "wait_old_drained"]
CLEAN = ["delete_old_alarms", "delete_old_policies", "delete_old_scheduled_actions"]
DELETE = ["delete_old_group", "wait_old_group_gone", "delete_old_launch_template"]
END = ["notify_complete", "complete"]
KEEP = [
    "keep_old_group",
    "delete_stale_kept_groups",
    "wait_stale_kept_groups_gone",
    "delete_stale_kept_launch_templates",
]

CASES: list[tuple[str, dict[str, Any], GroupState | None, str | None, list[str]]] = [
    ("first deployment", {}, None, None, LAUNCH + HEALTH + TRAFFIC + SCALING + END),
    (
        "red-black",
        {},
        OLD,
        None,
        LAUNCH + HEALTH + TRAFFIC + SCALING + DRAIN + CLEAN + DELETE + END,
    ),
    (
        "no instance health check",
        {"skipInstanceHealthcheck": True},
        OLD,
        None,
        LAUNCH + TRAFFIC + SCALING + DRAIN + CLEAN + DELETE + END,
    ),
    (
        "keep previous group",
        {"keepPreviousGroup": True},
        OLD,
        None,
        LAUNCH + HEALTH + TRAFFIC + SCALING + DRAIN + CLEAN + KEEP + END,
    ),
    (
        "every pause point",
        {
            "pauseAfterInstancesHealthy": True,
            "pauseAfterLoadBalancersHealthy": True,
            "pauseAfterDeregisterOldInstances": True,
        },
        OLD,
        None,
        LAUNCH
        + HEALTH
        + ["pause_point"]
        + TRAFFIC
        + ["pause_point"]
        + SCALING
        + DRAIN
        + ["pause_point"]
        + CLEAN
        + DELETE
        + END,
    ),
    (
        "instructions",
        {},
        OLD,
        "look at the dashboard",
        LAUNCH + HEALTH + TRAFFIC + SCALING + ["show_instructions"] + DRAIN + CLEAN + DELETE + END,
    ),
    (
        "scale down after deployment, first",
        {"scaleDownAfterDeployment": True},
        None,
        None,
        LAUNCH + HEALTH + TRAFFIC + SCALING + ["scale_down_after_deployment"] + END,
    ),
]


@pytest.mark.parametrize(
    ("params", "previous", "instructions", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_deployment_steps(
    params: dict[str, Any],
    previous: GroupState | None,
    instructions: str | None,
    expected: list[str],
) -> None:
    steps = planner.deployment_steps(read_params(params), previous, instructions=instructions)
    assert planner.names(steps) == expected
    assert all(s.phase == "deploy" for s in steps)


def test_full_red_black_plan_is_60_to_80_actions() -> None:
    steps = planner.PREPARATION + planner.deployment_steps(DeployParams(), OLD)
    assert 60 <= len(steps) <= 80
    assert len(set(planner.names(planner.PREPARATION))) == len(planner.PREPARATION)


UNDO_CASES = [
    (
        "restore and remove",
        OLD,
        NEW,
        ["notify_undo", *LAUNCH, *HEALTH, *TRAFFIC, *SCALING, *DRAIN, *CLEAN, *DELETE, *END],
    ),
    ("first deployment undone", None, NEW, ["notify_undo", *DRAIN, *CLEAN, *DELETE, *END]),
    ("nothing created yet", OLD, None, ["notify_undo", *LAUNCH, *HEALTH, *TRAFFIC, *SCALING, *END]),
]


@pytest.mark.parametrize(
    ("restore", "remove", "expected"), [c[1:] for c in UNDO_CASES], ids=[c[0] for c in UNDO_CASES]
)
def test_undo_steps(
    restore: GroupState | None, remove: GroupState | None, expected: list[str]
) -> None:
    assert planner.names(planner.undo_steps(restore, remove)) == expected


def test_every_step_has_an_action() -> None:
    from klink.deploy.actions.registry import actions

    registry = actions()
    every = (
        planner.PREPARATION
        + planner.deployment_steps(
            read_params(
                {
                    "pauseAfterInstancesHealthy": True,
                    "keepPreviousGroup": True,
                    "scaleDownAfterDeployment": True,
                }
            ),
            OLD,
            instructions="x",
        )
        + planner.deployment_steps(DeployParams(), OLD)
        + planner.undo_steps(OLD, NEW)
    )
    assert {s.name for s in every} <= set(registry)


def test_describe_for_dry_run() -> None:
    assert planner.describe(NEW, OLD, target_exists=False, keep=False) == {
        "create": "search-prod-v002",
        "enable": "search-prod-v002",
        "disable": "search-prod-v001",
        "remove": "search-prod-v001",
        "keep": None,
    }
    kept = planner.describe(OLD, NEW, target_exists=True, keep=True)
    assert kept["create"] is None
    assert kept["keep"] == "search-prod-v002"


def test_bad_capacity_names_the_field() -> None:
    from klink.errors import InvalidInput

    with pytest.raises(InvalidInput) as info:
        read_params({"min": 3, "desiredCapacity": 2, "max": 4})
    assert info.value.field == "desiredCapacity"
