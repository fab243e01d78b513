"""The plan builder: pure functions from parameters and states to a tuple of steps.

A deployment's plan is its preparation (``PREPARATION``, the same for every deployment: reads
only) followed by the deployment phase, built at the end of preparation by
``deployment_steps`` from the deployment parameters and the previous state discovered from the
provider. Undo is the deployment phase again with the states swapped (``undo_steps``). The
same steps are shown by ``--dry-run``, persisted, executed and resumed. Old-group steps are
left out when there is no old group; each step is also a no-op at run time when its group is
missing, so a resumed or undone plan is safe on any state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from klink.deploy.model import DEPLOY, PREPARE, GroupState, Step, step
from klink.deploy.params import DeployParams

PREPARATION: tuple[Step, ...] = tuple(
    step(name, PREPARE)
    for name in (
        "validate_request",
        "read_application",
        "check_not_blocked",
        "check_contact",
        "read_environment",
        "connect_provider",
        "resolve_config_commit",
        "verify_config_commit",
        "read_application_properties",
        "read_deployment_params",
        "read_launch_data",
        "validate_deployment_params",
        "validate_capacity",
        "discover_previous_group",
        "discover_previous_launch_template",
        "discover_previous_policies",
        "discover_previous_alarms",
        "discover_previous_scheduled_actions",
        "find_kept_group",
        "describe_image",
        "check_image_app",
        "check_image_embargo",
        "check_instance_type",
        "resolve_security_groups",
        "resolve_subnets",
        "resolve_target_groups",
        "create_names",
        "create_tags",
        "generate_user_data",
        "generate_policies",
        "generate_alarms",
        "generate_scheduled_actions",
        "build_new_state",
        "complete_preparation",
        "notify_start",
    )
)


def _launch_and_health(params: DeployParams) -> list[Step]:
    steps = [
        step("create_launch_template", DEPLOY),
        step("create_group", DEPLOY),
        step("resize_group", DEPLOY),
        step("wait_instances_exist", DEPLOY),
        step("wait_instances_in_service", DEPLOY),
        step("suspend_launch_terminate", DEPLOY),
    ]
    if not params.skip_instance_healthcheck:
        steps.append(step("wait_instances_healthy", DEPLOY))
    return steps


def _traffic() -> list[Step]:
    return [
        step("resume_processes", DEPLOY),
        step("register_target_groups", DEPLOY),
        step("wait_target_groups_healthy", DEPLOY),
    ]


def _scaling() -> list[Step]:
    return [
        step("create_policies", DEPLOY),
        step("create_alarms", DEPLOY),
        step("create_scheduled_actions", DEPLOY),
        step("tag_group_deployed", DEPLOY),
    ]


def _retire(keep: bool, pause_after_deregister: bool) -> list[Step]:
    steps = [
        step("suspend_old_processes", DEPLOY),
        step("deregister_old_instances", DEPLOY),
        step("wait_old_drained", DEPLOY),
    ]
    if pause_after_deregister:
        steps.append(step("pause_point", DEPLOY, reason="pauseAfterDeregisterOldInstances"))
    steps += [
        step("delete_old_alarms", DEPLOY),
        step("delete_old_policies", DEPLOY),
        step("delete_old_scheduled_actions", DEPLOY),
    ]
    if keep:
        steps += [
            step("keep_old_group", DEPLOY),
            step("delete_stale_kept_groups", DEPLOY),
            step("wait_stale_kept_groups_gone", DEPLOY),
            step("delete_stale_kept_launch_templates", DEPLOY),
        ]
    else:
        steps += [
            step("delete_old_group", DEPLOY),
            step("wait_old_group_gone", DEPLOY),
            step("delete_old_launch_template", DEPLOY),
        ]
    return steps


def deployment_steps(
    params: DeployParams,
    previous: GroupState | None,
    *,
    instructions: str | None = None,
) -> tuple[Step, ...]:
    """The red-black deployment phase: new group up and healthy, traffic on it, old one out."""
    steps = _launch_and_health(params)
    if params.pause_after_instances_healthy:
        steps.append(step("pause_point", DEPLOY, reason="pauseAfterInstancesHealthy"))
    steps += _traffic()
    if params.pause_after_load_balancers_healthy:
        steps.append(step("pause_point", DEPLOY, reason="pauseAfterLoadBalancersHealthy"))
    steps += _scaling()
    if instructions:
        steps.append(step("show_instructions", DEPLOY, message=instructions))
    if previous is not None:
        steps += _retire(params.keep_previous_group, params.pause_after_deregister_old_instances)
    if params.scale_down_after_deployment:
        steps.append(step("scale_down_after_deployment", DEPLOY))
    steps += [step("notify_complete", DEPLOY), step("complete", DEPLOY)]
    return tuple(steps)


def undo_steps(restore: GroupState | None, remove: GroupState | None) -> tuple[Step, ...]:
    """The deployment phase with states swapped: ``restore`` back in traffic, ``remove`` gone.

    When ``restore`` still exists every launch step finds it done (no per-instance work), so
    undo costs the same for 1 or 1000 instances; when it was deleted it is recreated from the
    recorded state. With no previous group, undo only removes the new one.
    """
    steps: list[Step] = [step("notify_undo", DEPLOY)]
    if restore is not None:
        steps += _launch_and_health(DeployParams())
        steps += _traffic()
        steps += _scaling()
    if remove is not None:
        steps += _retire(keep=False, pause_after_deregister=False)
    steps += [step("notify_complete", DEPLOY), step("complete", DEPLOY)]
    return tuple(steps)


def names(steps: Sequence[Step]) -> list[str]:
    return [s.name for s in steps]


def describe(
    target: GroupState | None,
    retiring: GroupState | None,
    *,
    target_exists: bool,
    keep: bool,
) -> dict[str, Any]:
    """What a plan does to groups, for ``--dry-run``: created, enabled, disabled, removed."""
    return {
        "create": None if target is None or target_exists else target.name,
        "enable": None if target is None else target.name,
        "disable": None if retiring is None else retiring.name,
        "remove": None if retiring is None or keep else retiring.name,
        "keep": retiring.name if retiring is not None and keep else None,
    }


def plan_json(steps: Sequence[Step]) -> list[Mapping[str, Any]]:
    return [s.to_json() for s in steps]
