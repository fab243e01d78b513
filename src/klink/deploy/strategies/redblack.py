"""Red-black (blue/green): the new group up and healthy beside the old one, traffic moved to it,
then the old group out of traffic and deleted (or kept, with ``keepPreviousGroup``).

Undo is the same phase with the states swapped: the group to restore is checked with its own
recorded health gate. Old-group steps are left out when there is no old group; each step is
also a no-op at run time when its group is missing, so a resumed or undone plan is safe on any
state.
"""

from __future__ import annotations

from dataclasses import dataclass

from klink.config.params import DeploymentParams
from klink.deploy.model import DEPLOY, GroupState, Step, step


def launch_and_health(skip_instance_healthcheck: bool) -> list[Step]:
    steps = [
        step("create_launch_template", DEPLOY),
        step("create_group", DEPLOY),
        step("resize_group", DEPLOY),
        step("wait_instances_exist", DEPLOY),
        step("wait_instances_in_service", DEPLOY),
        step("suspend_launch_terminate", DEPLOY),
    ]
    if not skip_instance_healthcheck:
        steps.append(step("wait_instances_healthy", DEPLOY))
    return steps


def traffic() -> list[Step]:
    return [
        step("resume_processes", DEPLOY),
        step("register_target_groups", DEPLOY),
        step("wait_target_groups_healthy", DEPLOY),
    ]


def scaling() -> list[Step]:
    return [
        step("create_policies", DEPLOY),
        step("create_alarms", DEPLOY),
        step("create_scheduled_actions", DEPLOY),
        step("tag_group_deployed", DEPLOY),
    ]


def retire(keep: bool, pause_after_deregister: bool) -> list[Step]:
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


def finish() -> list[Step]:
    return [step("notify_complete", DEPLOY), step("complete", DEPLOY)]


@dataclass(frozen=True)
class RedBlack:
    name: str = "redblack"
    description: str = "new group beside the old, all traffic moved at once, old group removed"

    def deployment_steps(
        self,
        params: DeploymentParams,
        previous: GroupState | None,
        *,
        instructions: str | None = None,
    ) -> tuple[Step, ...]:
        steps = launch_and_health(params.skip_instance_healthcheck)
        if params.pause_after_instances_healthy:
            steps.append(step("pause_point", DEPLOY, reason="pauseAfterInstancesHealthy"))
        steps += traffic()
        if params.pause_after_load_balancers_healthy:
            steps.append(step("pause_point", DEPLOY, reason="pauseAfterLoadBalancersHealthy"))
        steps += scaling()
        if instructions:
            steps.append(step("show_instructions", DEPLOY, message=instructions))
        if previous is not None:
            steps += retire(params.keep_previous_group, params.pause_after_deregister_old_instances)
        if params.scale_down_after_deployment:
            steps.append(step("scale_down_after_deployment", DEPLOY))
        return tuple(steps + finish())

    def undo_steps(self, restore: GroupState | None, remove: GroupState | None) -> tuple[Step, ...]:
        """When ``restore`` still exists every launch step finds it done (no per-instance work),
        so undo costs the same for 1 or 1000 instances; when it was deleted it is recreated from
        the recorded state. With no previous group, undo only removes the new one."""
        steps: list[Step] = [step("notify_undo", DEPLOY)]
        if restore is not None:
            steps += launch_and_health(restore.health.skip)
            steps += traffic()
            steps += scaling()
        if remove is not None:
            steps += retire(keep=False, pause_after_deregister=False)
        return tuple(steps + finish())

    def on_failure(self, params: DeploymentParams) -> str:
        return "undo" if params.undo_on_failure else "hold"


STRATEGY = RedBlack()
