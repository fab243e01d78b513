"""Canary: a canary group (the new version) and a baseline group (the current version, fresh),
each at ``canary.weight`` percent beside the production group, judged interval by interval;
promoted when every interval passes, undone by itself when one fails.

The plan (``deployment_steps``), with a production group behind target groups:

1. ``connect_metrics`` finds the metric source (on local, starts the daemon's Prometheus);
   the canary group at ``canary.instances`` and the baseline group at the same size are launched
   side by side (their steps interleaved, so their instances boot together), each joins the
   target groups at weight 0 and is checked healthy through the balancer;
2. ``canary_traffic``: canary and baseline take ``weight`` percent each, production the rest;
3. ``analyse_canary`` once per interval (``actions/canary.py``): fail ends the canary at once
   (a critical metric that fails, or a score below ``thresholds.marginal``) and the strategy's
   failure path is always an undo; marginal pauses for a person; pass goes on;
4. the promotion: the canary group grows to the deployment's size and is checked healthy, then
   takes the traffic in the ``rolling`` steps when they are given, else in one flip to 100; the
   baseline group leaves the balancers and is deleted;
5. red-black's tail: scaling, the old production group kept warm, then retired.

Undo is red-black's (its first action puts all traffic back on production in one call per
target group, canary and baseline at 0), then the baseline group is removed. A first deployment,
or one without target groups, has nothing to compare with: it is red-black's plan (preparation
says so in the log).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import zip_longest

from klink.config.canary import CanaryParams
from klink.config.params import DeploymentParams
from klink.deploy.model import DEPLOY, GroupState, Step, step
from klink.deploy.strategies import redblack, rolling
from klink.deploy.strategies.redblack import launch_and_health, retire, weights_in


def _with(steps: list[Step], **args: object) -> list[Step]:
    return [step(s.name, s.phase, **{**dict(s.args), **args}) for s in steps]


def _side_by_side(first: list[Step], second: list[Step]) -> list[Step]:
    return [s for pair in zip_longest(first, second) for s in pair if s is not None]


def baseline_removal() -> list[Step]:
    """The baseline group out of its balancers and deleted (a no-op once it is gone)."""
    return _with([step("detach_traffic", DEPLOY), *retire(False, False)], group="baseline")


def analysis(params: DeploymentParams, previous: GroupState) -> list[Step]:
    canary = params.canary or CanaryParams()
    size = canary.instances
    launch = [*launch_and_health(params.skip_instance_healthcheck, True), *weights_in(True)]
    base = [*launch_and_health(previous.health.skip, True), *weights_in(True)]
    steps = [step("connect_metrics", DEPLOY)]
    steps += _side_by_side(_with(launch, size=size), _with(base, group="baseline"))
    steps.append(step("canary_traffic", DEPLOY, weight=canary.weight))
    steps += [step("analyse_canary", DEPLOY, interval=n) for n in range(1, canary.intervals + 1)]
    return steps


def promotion(params: DeploymentParams) -> list[Step]:
    steps = [
        step("resize_group", DEPLOY),
        step("wait_instances_exist", DEPLOY),
        step("wait_instances_in_service", DEPLOY),
    ]
    if not params.skip_instance_healthcheck:
        steps.append(step("wait_instances_healthy", DEPLOY))
    steps.append(step("wait_traffic_healthy", DEPLOY))
    if params.rolling is not None:
        steps += rolling.shifts(params.rolling)
    else:
        steps.append(step("shift_traffic", DEPLOY))
    return steps + baseline_removal()


@dataclass(frozen=True)
class Canary:
    name: str = "canary"
    description: str = (
        "canary and fresh baseline groups at a small weight beside production, judged by "
        "metrics each interval, then promoted or undone"
    )

    def deployment_steps(
        self,
        params: DeploymentParams,
        previous: GroupState | None,
        *,
        instructions: str | None = None,
    ) -> tuple[Step, ...]:
        if previous is None or not redblack.balanced(previous, params=params):
            return redblack.compose(params, previous, instructions, [step("shift_traffic", DEPLOY)])
        plan = list(redblack.compose(params, previous, instructions, []))
        # compose's launch and health steps for the new group are replaced by the analysis and
        # the promotion; its tail (scaling, old group warm, then retired) is kept.
        tail = plan[plan.index(step("wait_traffic_healthy", DEPLOY)) + 1 :]
        return tuple(analysis(params, previous) + promotion(params) + tail)

    def undo_steps(self, restore: GroupState | None, remove: GroupState | None) -> tuple[Step, ...]:
        steps = list(redblack.undo(restore, remove))
        at = len(steps) - len(redblack.finish())
        return tuple(steps[:at] + baseline_removal() + steps[at:])

    def on_failure(self, params: DeploymentParams) -> str:
        return "undo"  # a failed canary, or any failure before the promotion, is undone


STRATEGY = Canary()
