"""Red-black (blue/green): the new group up and healthy beside the old one, traffic moved to it,
then the old group out of traffic and deleted (or kept, with ``keepPreviousGroup``).

With target groups, traffic moves by weight (``actions/weights.py``): the new group is
attached at weight 0, checked healthy through the balancer, then takes 100 % in one call per
target group; the old group stays attached and warm at weight 0 for ``keepWarmSeconds``, then
is detached and retired. Without target groups the plan is the pre-weights one.

Undo is the same phase with the states swapped: the group to restore is checked with its own
recorded health gate. Over weights it starts with ``restore_traffic_if_warm`` (one weight change
back while the old group is warm); each later step then finds its work done. Old-group steps
are left out when there is no old group; each step is also a no-op at run time when its group
is missing, so a resumed or undone plan is safe on any state.
"""

from __future__ import annotations

from dataclasses import dataclass

from klink.config.params import DeploymentParams
from klink.deploy.model import DEPLOY, GroupState, Step, step


def launch_and_health(skip_instance_healthcheck: bool, attach: bool = False) -> list[Step]:
    """With ``attach`` the group joins its balancers at weight 0 as soon as its instances are
    in service: the balancer's checks then run while Klink's own instance check does, instead
    of after it (weight 0 takes no requests, so nothing reaches an instance not yet checked)."""
    steps = [
        step("create_launch_template", DEPLOY),
        step("create_group", DEPLOY),
        step("resize_group", DEPLOY),
        step("wait_instances_exist", DEPLOY),
        step("wait_instances_in_service", DEPLOY),
        step("suspend_launch_terminate", DEPLOY),
    ]
    if attach:
        steps.append(step("attach_traffic", DEPLOY))
    if not skip_instance_healthcheck:
        steps.append(step("wait_instances_healthy", DEPLOY))
    return steps


def traffic() -> list[Step]:
    return [
        step("resume_processes", DEPLOY),
        step("register_target_groups", DEPLOY),
        step("wait_target_groups_healthy", DEPLOY),
    ]


def weights_in(attached: bool) -> list[Step]:
    """The target group joins its balancers at weight 0 (unless ``attached`` already) and is
    checked healthy through them."""
    steps = [step("resume_processes", DEPLOY)]
    if not attached:
        steps.append(step("attach_traffic", DEPLOY))
    return [*steps, step("wait_traffic_healthy", DEPLOY)]


def balanced(*states: GroupState | None, params: DeploymentParams | None = None) -> bool:
    """True when traffic goes through target groups (and so moves by weight)."""
    wanted = bool(params.target_groups) if params is not None else False
    return wanted or any(s is not None and s.target_groups for s in states)


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


def compose(
    params: DeploymentParams,
    previous: GroupState | None,
    instructions: str | None,
    shifts: list[Step],
) -> tuple[Step, ...]:
    """The deployment phase of a strategy over weights; ``shifts`` are its traffic steps (one
    shift to 100 for red-black, weighted steps for rolling)."""
    weights = balanced(previous, params=params)
    steps = launch_and_health(params.skip_instance_healthcheck, attach=weights)
    if params.pause_after_instances_healthy:
        steps.append(step("pause_point", DEPLOY, reason="pauseAfterInstancesHealthy"))
    steps += weights_in(attached=True) + shifts if weights else traffic()
    if params.pause_after_load_balancers_healthy:
        steps.append(step("pause_point", DEPLOY, reason="pauseAfterLoadBalancersHealthy"))
    steps += scaling()
    if instructions:
        steps.append(step("show_instructions", DEPLOY, message=instructions))
    if previous is not None:
        if weights:
            steps += [
                step("keep_warm", DEPLOY, seconds=params.keep_warm_seconds),
                step("detach_traffic", DEPLOY),
            ]
        steps += retire(params.keep_previous_group, params.pause_after_deregister_old_instances)
    if params.scale_down_after_deployment:
        steps.append(step("scale_down_after_deployment", DEPLOY))
    return tuple(steps + finish())


def undo(restore: GroupState | None, remove: GroupState | None) -> tuple[Step, ...]:
    """When ``restore`` still exists every launch step finds it done (no per-instance work),
    so undo costs the same for 1 or 1000 instances; when it was deleted it is recreated from
    the recorded state. With no previous group, undo only removes the new one. Over weights
    the first step moves all traffic back if ``restore`` is still warm."""
    weights = balanced(restore, remove)
    steps: list[Step] = []
    if weights and restore is not None:
        steps.append(step("restore_traffic_if_warm", DEPLOY))
    steps.append(step("notify_undo", DEPLOY))
    if restore is not None:
        # A group registered directly (before weights) is registered only once checked healthy.
        early = weights and restore.weighted
        steps += launch_and_health(restore.health.skip, attach=early)
        join = [*weights_in(attached=early), step("shift_traffic", DEPLOY)]
        steps += join if weights else traffic()
        steps += scaling()
    if remove is not None:
        if weights:
            steps.append(step("detach_traffic", DEPLOY))
        steps += retire(keep=False, pause_after_deregister=False)
    return tuple(steps + finish())


@dataclass(frozen=True)
class RedBlack:
    name: str = "redblack"
    description: str = (
        "new group beside the old, all traffic moved at once, old group kept warm then removed"
    )

    def deployment_steps(
        self,
        params: DeploymentParams,
        previous: GroupState | None,
        *,
        instructions: str | None = None,
    ) -> tuple[Step, ...]:
        return compose(params, previous, instructions, [step("shift_traffic", DEPLOY)])

    def undo_steps(self, restore: GroupState | None, remove: GroupState | None) -> tuple[Step, ...]:
        return undo(restore, remove)

    def on_failure(self, params: DeploymentParams) -> str:
        return "undo" if params.undo_on_failure else "hold"


STRATEGY = RedBlack()
