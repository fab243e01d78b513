"""The ``rolling`` section of ``deployment-params.json``: the traffic steps of a rolling deploy.

``{"strategy": "rolling", "rolling": {"steps": [{"weight": 10, "pauseSeconds": 30},
{"weight": 50, "pause": true}, {"weight": 100}]}}``: each step moves ``weight`` percent of the
traffic to the new group (the old group keeps the rest), checks the new group healthy through
the balancer, then holds ``pauseSeconds`` or, with ``pause: true``, pauses the deployment until
a person resumes it. A step may be written as a bare number (``"steps": [10, 50, 100]``).
Weights increase strictly and the last is 100; those rules are checked with the other
cross-field rules (``rolling_problems``), so a bad step is named by its path
(``rolling.steps[1].weight``) at push time.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

MAX_PAUSE_SECONDS = 86_400


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class RollingStep(_Model):
    weight: int = Field(ge=1, le=100)
    pause_seconds: int = Field(default=0, ge=0, le=MAX_PAUSE_SECONDS)
    pause: bool = False


def _default_steps() -> tuple[RollingStep, ...]:
    return tuple(RollingStep(weight=w) for w in (10, 50, 100))


class RollingParams(_Model):
    steps: tuple[RollingStep, ...] = Field(default_factory=_default_steps)

    @field_validator("steps", mode="before")
    @classmethod
    def _bare_numbers(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [
                {"weight": item} if isinstance(item, int) and not isinstance(item, bool) else item
                for item in value
            ]
        return value


def rolling_problems(rolling: RollingParams) -> list[tuple[str, str]]:
    """(field path, message) for each broken rule of the steps."""
    problems: list[tuple[str, str]] = []
    if not rolling.steps:
        return [("rolling.steps", "needs at least one step (the last at 100)")]
    before = 0
    for index, item in enumerate(rolling.steps):
        where = f"rolling.steps[{index}]"
        if item.weight <= before:
            problems.append((f"{where}.weight", f"must be above the step before ({before})"))
        if item.pause and item.pause_seconds:
            problems.append((where, "give pause or pauseSeconds, not both"))
        before = max(before, item.weight)
    last = rolling.steps[-1]
    if last.weight != 100:
        at = f"rolling.steps[{len(rolling.steps) - 1}].weight"
        problems.append((at, f"the last step must be 100, not {last.weight}"))
    return problems
