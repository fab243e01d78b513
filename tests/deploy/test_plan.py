"""The red-black strategy as a table: (params, previous state) -> the deployment phase's
actions; its undo from (restore, remove); and the one parameter model's defaults."""

from __future__ import annotations

from typing import Any

import pytest

from klink.config.params import DeploymentParams, parse_deployment_params
from klink.deploy import plan as planner
from klink.deploy.context import stored_params
from klink.deploy.model import GroupState, plan_hash
from klink.deploy.preparation import HealthGate
from klink.deploy.strategies import strategy_of
from klink.errors import InvalidInput

REDBLACK = strategy_of("redblack")


def read_params(data: dict[str, Any]) -> DeploymentParams:
    return parse_deployment_params(data, provider="local")


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
    steps = REDBLACK.deployment_steps(read_params(params), previous, instructions=instructions)
    assert planner.names(steps) == expected
    assert all(s.phase == "deploy" for s in steps)


# Over weights: the same table with target groups (the states' or the params').
WOLD = GroupState(
    name="search-prod-v001",
    launch=None,
    min_size=1,
    max_size=1,
    desired_capacity=1,
    target_groups=("web",),
    weighted=True,
)
WNEW = GroupState(
    name="search-prod-v002",
    launch=None,
    min_size=1,
    max_size=1,
    desired_capacity=1,
    target_groups=("web",),
    weighted=True,
)
ATTACH = ["attach_traffic"]  # at weight 0, before the instance check: the checks overlap
JOIN = ["resume_processes", "wait_traffic_healthy"]
SHIFT = ["shift_traffic"]
WARM = ["keep_warm", "detach_traffic"]
WEIGHT_CASES: list[tuple[str, str, dict[str, Any], GroupState | None, list[str]]] = [
    (
        "first deployment",
        "redblack",
        {"targetGroups": ["web"]},
        None,
        LAUNCH + ATTACH + HEALTH + JOIN + SHIFT + SCALING + END,
    ),
    (
        "red-black",
        "redblack",
        {},
        WOLD,
        LAUNCH + ATTACH + HEALTH + JOIN + SHIFT + SCALING + WARM + DRAIN + CLEAN + DELETE + END,
    ),
    (
        "pause after the balancer: after the shift, the old group warm",
        "redblack",
        {"pauseAfterLoadBalancersHealthy": True},
        WOLD,
        LAUNCH
        + ATTACH
        + HEALTH
        + JOIN
        + SHIFT
        + ["pause_point"]
        + SCALING
        + WARM
        + DRAIN
        + CLEAN
        + DELETE
        + END,
    ),
    (
        "rolling, default steps",
        "rolling",
        {"strategy": "rolling"},
        WOLD,
        LAUNCH
        + ATTACH
        + HEALTH
        + JOIN
        + ["shift_traffic", "wait_traffic_healthy"] * 3
        + SCALING
        + WARM
        + DRAIN
        + CLEAN
        + DELETE
        + END,
    ),
    (
        "rolling with a hold and a pause",
        "rolling",
        {
            "strategy": "rolling",
            "rolling": {
                "steps": [{"weight": 25, "pauseSeconds": 5}, {"weight": 100, "pause": True}]
            },
        },
        WOLD,
        LAUNCH
        + ATTACH
        + HEALTH
        + JOIN
        + ["shift_traffic", "wait_traffic_healthy", "hold_traffic"]
        + ["shift_traffic", "wait_traffic_healthy", "pause_point"]
        + SCALING
        + WARM
        + DRAIN
        + CLEAN
        + DELETE
        + END,
    ),
    (
        "rolling, first deployment: one shift",
        "rolling",
        {"strategy": "rolling", "targetGroups": ["web"]},
        None,
        LAUNCH + ATTACH + HEALTH + JOIN + SHIFT + SCALING + END,
    ),
]


@pytest.mark.parametrize(
    ("strategy", "params", "previous", "expected"),
    [c[1:] for c in WEIGHT_CASES],
    ids=[c[0] for c in WEIGHT_CASES],
)
def test_deployment_steps_over_weights(
    strategy: str, params: dict[str, Any], previous: GroupState | None, expected: list[str]
) -> None:
    steps = strategy_of(strategy).deployment_steps(read_params(params), previous)
    assert planner.names(steps) == expected


def test_rolling_steps_carry_their_weights_and_the_keep_warm_its_seconds() -> None:
    params = read_params({"strategy": "rolling", "rolling": {"steps": [10, 50, 100]}})
    steps = strategy_of("rolling").deployment_steps(params, WOLD)
    assert [s.arg("weight") for s in steps if s.name == "shift_traffic"] == [10, 50, 100]
    warm = read_params({"keepWarmSeconds": 300})
    [keep] = [s for s in REDBLACK.deployment_steps(warm, WOLD) if s.name == "keep_warm"]
    assert keep.arg("seconds") == 300


WEIGHT_UNDO = [
    (
        "restore and remove",
        WOLD,
        WNEW,
        [
            "restore_traffic_if_warm",
            "notify_undo",
            *LAUNCH,
            *ATTACH,
            *HEALTH,
            *JOIN,
            *SHIFT,
            *SCALING,
            "detach_traffic",
            *DRAIN,
            *CLEAN,
            *DELETE,
            *END,
        ],
    ),
    (
        "restore a group registered directly: registered once checked healthy",
        GroupState(
            name="search-prod-v001",
            launch=None,
            min_size=1,
            max_size=1,
            desired_capacity=1,
            target_groups=("web",),
        ),
        WNEW,
        [
            "restore_traffic_if_warm",
            "notify_undo",
            *LAUNCH,
            *HEALTH,
            "resume_processes",
            "attach_traffic",
            "wait_traffic_healthy",
            *SHIFT,
            *SCALING,
            "detach_traffic",
            *DRAIN,
            *CLEAN,
            *DELETE,
            *END,
        ],
    ),
    (
        "first deployment undone",
        None,
        WNEW,
        ["notify_undo", "detach_traffic", *DRAIN, *CLEAN, *DELETE, *END],
    ),
]


@pytest.mark.parametrize(
    ("restore", "remove", "expected"), [c[1:] for c in WEIGHT_UNDO], ids=[c[0] for c in WEIGHT_UNDO]
)
@pytest.mark.parametrize("strategy", ["redblack", "rolling"])
def test_undo_steps_over_weights_start_with_the_warm_restore(
    strategy: str, restore: GroupState | None, remove: GroupState | None, expected: list[str]
) -> None:
    assert planner.names(strategy_of(strategy).undo_steps(restore, remove)) == expected


ROLLING_PROBLEMS = [
    ({"steps": [10, 5, 100]}, "rolling.steps[1].weight", "above the step before"),
    ({"steps": [10, 50]}, "rolling.steps[1].weight", "last step must be 100"),
    ({"steps": [{"weight": 0}, 100]}, "rolling.steps[0].weight", "greater than or equal to 1"),
    (
        {"steps": [{"weight": 50, "pause": True, "pauseSeconds": 3}, 100]},
        "rolling.steps[0]",
        "not both",
    ),
    ({"steps": []}, "rolling.steps", "at least one step"),
    ({"steps": [{"weight": 100, "wait": 3}]}, "rolling.steps[0].wait", "unknown field"),
]


@pytest.mark.parametrize(("rolling", "field", "words"), ROLLING_PROBLEMS)
def test_bad_rolling_steps_are_named_by_their_field(
    rolling: dict[str, Any], field: str, words: str
) -> None:
    from klink.config.params import deployment_params_problems

    problems = deployment_params_problems(
        {"strategy": "rolling", "rolling": rolling}, provider="local"
    )
    assert [p.field for p in problems] == [field], problems
    assert words in problems[0].message
    with pytest.raises(InvalidInput) as info:
        read_params({"strategy": "rolling", "rolling": rolling})
    assert info.value.field == field


def test_rolling_section_without_the_rolling_strategy_is_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        read_params({"rolling": {"steps": [100]}})
    assert info.value.field == "rolling"
    with pytest.raises(InvalidInput) as warm:
        read_params({"keepWarmSeconds": 3601})
    assert warm.value.field == "keepWarmSeconds"


def test_full_red_black_plan_is_60_to_80_actions() -> None:
    steps = planner.PREPARATION + REDBLACK.deployment_steps(DeploymentParams(), OLD)
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
    assert planner.names(REDBLACK.undo_steps(restore, remove)) == expected


def test_every_step_has_an_action() -> None:
    from klink.deploy.actions.registry import actions

    registry = actions()
    every = (
        planner.PREPARATION
        + REDBLACK.deployment_steps(
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
        + REDBLACK.deployment_steps(DeploymentParams(), OLD)
        + REDBLACK.undo_steps(OLD, NEW)
        + strategy_of("rolling").deployment_steps(
            read_params(
                {
                    "strategy": "rolling",
                    "rolling": {
                        "steps": [{"weight": 5, "pause": True}, {"weight": 100, "pauseSeconds": 1}]
                    },
                }
            ),
            WOLD,
        )
        + REDBLACK.undo_steps(WOLD, WNEW)
        + planner.RESIZE
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
    with pytest.raises(InvalidInput) as info:
        read_params({"min": 3, "desiredCapacity": 2, "max": 4})
    assert info.value.field == "desiredCapacity"


def test_the_engine_uses_the_schemas_defaults_field_by_field() -> None:
    """One parameter model: what the engine reads when a file gives nothing is, field by field,
    the schema's own default (there was a second parser whose defaults differed)."""
    stored = parse_deployment_params({}, provider="local").to_json()  # what preparation stores
    engine = stored_params(stored)
    bare = stored_params(None)
    for name, info in DeploymentParams.model_fields.items():
        assert getattr(engine, name) == info.get_default(call_default_factory=True), name
        assert getattr(bare, name) == info.get_default(call_default_factory=True), name
    assert engine.instance_healthy_attempts == 100
    assert engine.subnet_purpose == "internal"
    assert engine.termination_policies == ("Default",)
    assert engine.health_check_interval_seconds == 5.0


def test_a_long_health_interval_is_used_as_given() -> None:
    """The schema allows up to 300 s between looks; nothing caps it at 30 s any more."""
    params = read_params({"healthCheckIntervalSeconds": 120, "instanceHealthyAttempts": 3})
    gate = HealthGate.of(params, {})
    assert gate.interval == 120
    assert gate.timeout == 360


def test_empty_lists_mean_none_and_absent_means_carried_over() -> None:
    absent = read_params({})
    empty = read_params({"policies": [], "alarms": [], "scheduledActions": []})
    assert absent.policies is None
    assert absent.alarms is None
    assert absent.scheduled_actions is None
    assert empty.policies == ()
    assert empty.alarms == ()
    assert empty.scheduled_actions == ()


def test_undo_checks_the_restored_group_with_its_own_gate() -> None:
    unchecked = GroupState(
        name="search-prod-v001",
        launch=None,
        min_size=1,
        max_size=1,
        desired_capacity=1,
        health=HealthGate(skip=True),
    )
    assert "wait_instances_healthy" not in planner.names(REDBLACK.undo_steps(unchecked, NEW))
    assert "wait_instances_healthy" in planner.names(REDBLACK.undo_steps(OLD, NEW))


def test_health_gate_round_trips_through_its_tag() -> None:
    gate = HealthGate(port=9090, path="/ready?full=1", interval=2, timeout=40, skip=True)
    assert HealthGate.from_tag(gate.tag()) == gate
    assert HealthGate.from_tag(None) == HealthGate()
    assert HealthGate.from_tag("garbage;port=x") == HealthGate()


def test_plan_hash_changes_with_any_step_or_argument() -> None:
    one = REDBLACK.deployment_steps(DeploymentParams(), OLD)
    same = REDBLACK.deployment_steps(DeploymentParams(), OLD)
    other = REDBLACK.deployment_steps(read_params({"keepPreviousGroup": True}), OLD)
    assert plan_hash(one) == plan_hash(same)
    assert plan_hash(one) != plan_hash(other)


def test_an_unknown_strategy_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as info:
        strategy_of("yolo")
    assert info.value.field == "strategy"
    with pytest.raises(InvalidInput) as parsed:
        read_params({"strategy": "yolo"})
    assert parsed.value.field == "strategy"
