"""Rolling red-black: the new group beside the old one, traffic moved to it in weighted steps.

``rolling.steps`` (``config/rolling.py``) gives the percentages of traffic on the new group,
increasing, the last 100. Each step is one shift (the old group keeps the rest), then a health
check of the new group through the balancer, then the step's hold (``pauseSeconds``) or a
pause that a person resumes (``pause: true``). After the last step the plan is red-black's:
scaling, the old group kept warm, then retired. Undo at any step is red-black's undo: its first
action puts all traffic back on the old group in one call per target group. A first deployment
(no old group) or one without target groups has nothing to share traffic with: one shift to 100.
"""

from __future__ import annotations

from dataclasses import dataclass

from klink.config.params import DeploymentParams
from klink.config.rolling import RollingParams
from klink.deploy.model import DEPLOY, GroupState, Step, step
from klink.deploy.strategies import redblack


def shifts(rolling: RollingParams) -> list[Step]:
    steps: list[Step] = []
    for item in rolling.steps:
        steps += [
            step("shift_traffic", DEPLOY, weight=item.weight),
            step("wait_traffic_healthy", DEPLOY),
        ]
        if item.pause_seconds:
            steps.append(
                step("hold_traffic", DEPLOY, seconds=item.pause_seconds, weight=item.weight)
            )
        if item.pause:
            steps.append(step("pause_point", DEPLOY, reason=f"rolling step {item.weight}%"))
    return steps


@dataclass(frozen=True)
class Rolling:
    name: str = "rolling"
    description: str = "new group beside the old, traffic moved in weighted steps, old removed"

    def deployment_steps(
        self,
        params: DeploymentParams,
        previous: GroupState | None,
        *,
        instructions: str | None = None,
    ) -> tuple[Step, ...]:
        if previous is None:
            moves = [step("shift_traffic", DEPLOY)]
        else:
            moves = shifts(params.rolling or RollingParams())
        return redblack.compose(params, previous, instructions, moves)

    def undo_steps(self, restore: GroupState | None, remove: GroupState | None) -> tuple[Step, ...]:
        return redblack.undo(restore, remove)

    def on_failure(self, params: DeploymentParams) -> str:
        return "undo" if params.undo_on_failure else "hold"


STRATEGY = Rolling()
