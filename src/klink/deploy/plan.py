"""The plan: its preparation (the same for every deployment: reads only) and what a dry run
says of the groups.

A deployment's plan is ``PREPARATION`` followed by the deployment phase, which the chosen
strategy (``deploy/strategies``) builds at the end of preparation from the validated parameters
and the previous state discovered from the provider; undo is the strategy's undo steps. The same
steps are shown by ``--dry-run``, persisted (with a hash, ``model.plan_hash``), executed and
resumed. Preparation ends with the release gates (``await_approval``, ``await_window``:
``actions/gates.py``), after every read and before anything changes, so a deployment that
waits for people or for its window has touched nothing and a rejection frees its slot.
``RESIZE`` is the plan of a resize: a one-step deployment, recorded and locked like
any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from klink.deploy.model import DEPLOY, PREPARE, GroupState, Step, step

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
        "build_baseline_state",
        "await_approval",
        "await_window",
        "complete_preparation",
        "notify_start",
    )
)


RESIZE: tuple[Step, ...] = (
    step("read_environment", PREPARE),
    step("connect_provider", PREPARE),
    step("discover_previous_group", PREPARE),
    step("complete_resize_preparation", PREPARE),
    step("resize_current_group", DEPLOY),
    step("complete", DEPLOY),
)


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
