"""The ``canary`` section of ``deployment-params.json``: what a canary runs and how it is judged.

A frozen pydantic model in the style of ``config/params.py`` (camelCase JSON names, unknown keys
refused, every problem named with its path), meant to be a field of ``DeploymentParams``, so
that problems read ``canary.metrics[1].builtin``. Defaults give a useful canary with nothing
written but ``"canary": {}``: 10 % of traffic to each of baseline and canary, 3 intervals of
5 minutes, judged on the built-in metrics (error rate, critical; latency p50 and p99), pass at
95, marginal at 75 (Kayenta's usual thresholds).

A metric is either ``builtin`` (one of ``BUILTINS``, which each provider knows how to measure)
or a ``query`` in the provider's metric language (PromQL on local, a CloudWatch metric on aws:
see docs/canary.md); ``$group`` in a query stands for the group being measured and ``$step``
for the step. ``direction`` says which change is bad. ``tolerance`` (relative to the baseline's
median) and ``minEffect`` (absolute; default per builtin) set how big a significant difference
must be to fail. The statistics live in ``klink.analysis.judge``; this module only validates.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

BUILTINS = ("error-rate", "latency-p50", "latency-p99")
Builtin = Literal["error-rate", "latency-p50", "latency-p99"]
Direction = Literal["increase", "decrease", "either"]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=False,
    )


def _invalid(message: str) -> PydanticCustomError:
    # Not ValueError: pydantic would prefix its message with "Value error, ".
    return PydanticCustomError("invalid", message)


def _problem(model: str, loc: tuple[int | str, ...], message: str, value: Any) -> ValidationError:
    """A validation error at ``loc`` below the field being validated (so paths stay exact)."""
    return ValidationError.from_exception_data(
        model, [InitErrorDetails(type=_invalid(message), loc=loc, input=value)]
    )


class CanaryMetric(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$")
    query: str | None = Field(default=None, min_length=1, max_length=4000)
    builtin: Builtin | None = Field(default=None, validate_default=True)
    direction: Direction = "increase"
    critical: bool = False
    tolerance: float = Field(default=0.1, ge=0, le=100)
    min_effect: float | None = Field(default=None, ge=0)

    @field_validator("builtin")
    @classmethod
    def _query_or_builtin(cls, builtin: str | None, info: Any) -> str | None:
        if "query" not in info.data:
            return builtin  # the query itself is broken: that problem is named already
        query = info.data["query"]
        if query is None and builtin is None:
            raise _invalid("give a query or a builtin")
        if query is not None and builtin is not None:
            raise _invalid("give a query or a builtin, not both")
        return builtin


def default_metrics() -> tuple[CanaryMetric, ...]:
    return (
        CanaryMetric(name="error-rate", builtin="error-rate", critical=True),
        CanaryMetric(name="latency-p50", builtin="latency-p50"),
        CanaryMetric(name="latency-p99", builtin="latency-p99"),
    )


class CanaryThresholds(_Model):
    pass_: float = Field(default=95.0, alias="pass", ge=0, le=100)
    marginal: float = Field(default=75.0, ge=0, le=100, validate_default=True)

    @field_validator("marginal")
    @classmethod
    def _not_above_pass(cls, marginal: float, info: Any) -> float:
        passing = info.data.get("pass_")
        if passing is not None and marginal > passing:
            raise _invalid(f"marginal ({marginal:g}) must not exceed pass ({passing:g})")
        return marginal


class CanaryParams(_Model):
    """``canary`` in deployment-params.json; see the module docstring."""

    # Percent of traffic to each of the canary and the baseline group (production keeps the rest).
    weight: int = Field(default=10, ge=1, le=50)
    # Instances in each of the canary and the baseline group (the canary group grows to the
    # deployment's own size when it is promoted).
    instances: int = Field(default=1, ge=1, le=100)
    intervals: int = Field(default=3, ge=1, le=100)
    interval_seconds: int = Field(default=300, ge=1, le=86400)
    # Seconds per value in a series; None: the metric source's choice (see analysis.sources).
    step_seconds: int | None = Field(default=None, ge=1, le=3600)
    metrics: tuple[CanaryMetric, ...] = Field(default_factory=default_metrics)
    thresholds: CanaryThresholds = Field(default_factory=CanaryThresholds)

    @field_validator("metrics")
    @classmethod
    def _unique_names(cls, metrics: tuple[CanaryMetric, ...]) -> tuple[CanaryMetric, ...]:
        if not metrics:
            raise _invalid("needs at least one metric (leave it out for the built-in ones)")
        seen: set[str] = set()
        for index, metric in enumerate(metrics):
            if metric.name in seen:
                raise _problem(
                    "CanaryParams", (index, "name"), f"duplicate name {metric.name!r}", metric.name
                )
            seen.add(metric.name)
        return metrics

    @field_validator("step_seconds")
    @classmethod
    def _step_fits(cls, step: int | None, info: Any) -> int | None:
        interval = info.data.get("interval_seconds")
        if step is not None and interval is not None and step > interval:
            raise _invalid(f"stepSeconds ({step}) must not exceed intervalSeconds ({interval})")
        return step

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)
