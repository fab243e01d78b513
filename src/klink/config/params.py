"""The schema of ``deployment-params.json``, shared by the config service and the orchestrator.

``DeploymentParams`` is a frozen pydantic model whose JSON names are camelCase (as in the file)
and whose Python names are snake_case; every field has a default except ``instanceType`` on aws.
Validation never stops at the first problem: ``deployment_params_problems`` returns every
problem, each naming its field as a path (``volumes[0].sizeGb``), and
``parse_deployment_params`` raises one ``InvalidInput`` listing them all (its ``field`` is the
first). Unknown keys are problems too: a typo such as ``desiredCapcity`` must not be silently
ignored. Policies, alarms and scheduled actions convert to ``providers.base`` dataclasses once the
group name is known (``to_provider(group)``).

Also here: the small helpers for ``application-properties.json`` (a flat object of dotted keys →
scalars) and ``launch-data.json`` (an array of strings), which the orchestrator reads too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from klink.config.canary import CanaryParams
from klink.config.rolling import RollingParams, rolling_problems
from klink.errors import InvalidInput
from klink.providers.base import Alarm, BlockDevice, ScalingPolicy, ScheduledAction

PROVIDERS = ("aws", "local")
DEFAULT_SERVICE_PORT = 8080
DEFAULT_HEALTHCHECK_PATH = "/healthcheck"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file: ``field`` is a path such as ``volumes[0].sizeGb``."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=False,
    )

    @classmethod
    def from_provider(cls, item: object) -> Any:
        """The model of a provider dataclass read from the cloud (same field names)."""
        return cls.model_validate(
            {name: getattr(item, name) for name in cls.model_fields if hasattr(item, name)}
        )

    def to_json(self) -> dict[str, Any]:
        """The camelCase JSON form, every default filled in."""
        return self.model_dump(mode="json", by_alias=True)


class Volume(_Model):
    device: str = Field(min_length=1, max_length=64)
    size_gb: int = Field(ge=1, le=16384)
    type: Literal["gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"] = "gp3"
    delete_on_termination: bool = True

    def to_provider(self) -> BlockDevice:
        return BlockDevice(
            device_name=self.device,
            size_gb=self.size_gb,
            volume_type=self.type,
            delete_on_termination=self.delete_on_termination,
        )


class PolicyParams(_Model):
    name: str = Field(min_length=1, max_length=128)
    policy_type: Literal["SimpleScaling", "StepScaling", "TargetTrackingScaling"] = "SimpleScaling"
    adjustment_type: (
        Literal["ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity"] | None
    ) = "ChangeInCapacity"
    scaling_adjustment: int | None = None
    cooldown: int | None = Field(default=None, ge=0)
    target_value: float | None = None
    predefined_metric: str | None = None

    def to_provider(self, group: str) -> ScalingPolicy:
        return ScalingPolicy(
            name=self.name,
            group=group,
            policy_type=self.policy_type,
            adjustment_type=self.adjustment_type,
            scaling_adjustment=self.scaling_adjustment,
            cooldown=self.cooldown,
            target_value=self.target_value,
            predefined_metric=self.predefined_metric,
        )


class AlarmParams(_Model):
    name: str = Field(min_length=1, max_length=128)
    metric_name: str = Field(min_length=1)
    threshold: float
    comparison: Literal[
        "GreaterThanThreshold",
        "GreaterThanOrEqualToThreshold",
        "LessThanThreshold",
        "LessThanOrEqualToThreshold",
    ] = "GreaterThanThreshold"
    namespace: str = "AWS/EC2"
    statistic: Literal["Average", "Sum", "Minimum", "Maximum", "SampleCount"] = "Average"
    period: int = Field(default=60, ge=10)
    evaluation_periods: int = Field(default=1, ge=1)
    policies: tuple[str, ...] = ()

    def to_provider(self, group: str) -> Alarm:
        return Alarm(
            name=self.name,
            group=group,
            metric_name=self.metric_name,
            threshold=self.threshold,
            comparison=self.comparison,
            namespace=self.namespace,
            statistic=self.statistic,
            period=self.period,
            evaluation_periods=self.evaluation_periods,
            policies=self.policies,
        )


class ScheduledActionParams(_Model):
    name: str = Field(min_length=1, max_length=128)
    recurrence: str | None = None
    start_time: datetime | None = None
    min_size: int | None = Field(default=None, ge=0)
    max_size: int | None = Field(default=None, ge=0)
    desired_capacity: int | None = Field(default=None, ge=0)

    def to_provider(self, group: str) -> ScheduledAction:
        return ScheduledAction(
            name=self.name,
            group=group,
            recurrence=self.recurrence,
            start_time=self.start_time,
            min_size=self.min_size,
            max_size=self.max_size,
            desired_capacity=self.desired_capacity,
        )


class DeploymentParams(_Model):
    """How to deploy one app in one environment; see the module docstring."""

    strategy: Literal["redblack", "rolling", "canary"] = "redblack"
    instance_type: str | None = Field(default=None, min_length=1, max_length=64)
    min: int = Field(default=1, ge=0)
    max: int = Field(default=1, ge=0)
    desired_capacity: int = Field(default=1, ge=0)
    default_cooldown: int = Field(default=10, ge=0)
    health_check_type: Literal["EC2", "ELB"] = "EC2"
    health_check_grace_period: int = Field(default=600, ge=0)
    health_check_interval_seconds: float = Field(default=5.0, gt=0, le=300)
    instance_healthy_attempts: int = Field(default=100, ge=1)
    load_balancer_healthy_attempts: int = Field(default=100, ge=1)
    skip_instance_healthcheck: bool = False
    target_groups: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    subnet_purpose: str | None = "internal"
    termination_policies: tuple[str, ...] = ("Default",)
    volumes: tuple[Volume, ...] = ()
    pause_after_instances_healthy: bool = False
    pause_after_load_balancers_healthy: bool = False
    pause_after_deregister_old_instances: bool = False
    scale_down_after_deployment: bool = False
    # None: not given, the previous group's are carried over; an empty list means none.
    scheduled_actions: tuple[ScheduledActionParams, ...] | None = None
    policies: tuple[PolicyParams, ...] | None = None
    alarms: tuple[AlarmParams, ...] | None = None
    undo_on_failure: bool = False
    keep_previous_group: bool = False
    # Seconds the old group stays attached at weight 0 after the switch: an undo then is one
    # weight change (see docs/deploy.md, strategies).
    keep_warm_seconds: int = Field(default=60, ge=0, le=3600)
    # The steps of ``strategy: rolling``, and of a canary's promotion (else one flip to 100).
    rolling: RollingParams | None = None
    instance_profile: str | None = None
    key_name: str | None = None
    canary: CanaryParams | None = None  # ``strategy: canary``'s analysis (None: its defaults)

    def block_devices(self) -> tuple[BlockDevice, ...]:
        return tuple(volume.to_provider() for volume in self.volumes)


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _message(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "is required"
    return str(error.get("msg", "is invalid"))


def _cross_field_problems(params: DeploymentParams, provider: str) -> list[Problem]:
    problems: list[Problem] = []
    if provider == "aws" and not params.instance_type:
        problems.append(Problem("instanceType", "is required on aws"))
    if params.min > params.max:
        problems.append(Problem("min", f"min ({params.min}) must not exceed max ({params.max})"))
    if not params.min <= params.desired_capacity <= params.max:
        problems.append(
            Problem(
                "desiredCapacity",
                f"desiredCapacity ({params.desired_capacity}) must be between "
                f"min ({params.min}) and max ({params.max})",
            )
        )
    if params.rolling is not None:
        if params.strategy not in ("rolling", "canary"):
            problems.append(Problem("rolling", "is read only with strategy rolling or canary"))
        problems += [Problem(field, message) for field, message in rolling_problems(params.rolling)]
    if params.canary is not None and params.strategy != "canary":
        problems.append(Problem("canary", "is read only with strategy canary"))
    policies, alarms = params.policies or (), params.alarms or ()
    scheduled = params.scheduled_actions or ()
    named: dict[str, list[str]] = {
        "policies": [policy.name for policy in policies],
        "alarms": [alarm.name for alarm in alarms],
        "scheduledActions": [action.name for action in scheduled],
    }
    for kind, names in named.items():
        seen: set[str] = set()
        for index, item_name in enumerate(names):
            if item_name in seen:
                problems.append(Problem(f"{kind}[{index}].name", f"duplicate name {item_name!r}"))
            seen.add(item_name)
    policy_names = {policy.name for policy in policies}
    for index, alarm in enumerate(alarms):
        for p_index, policy in enumerate(alarm.policies):
            # Without "policies" the previous group's are carried over: checked at deploy time.
            if params.policies is not None and policy not in policy_names:
                problems.append(
                    Problem(f"alarms[{index}].policies[{p_index}]", f"no policy named {policy!r}")
                )
    for index, action in enumerate(scheduled):
        if action.recurrence is None and action.start_time is None:
            problems.append(
                Problem(f"scheduledActions[{index}]", "needs a recurrence or a startTime")
            )
        if action.recurrence is not None:
            from croniter import croniter

            if not croniter.is_valid(action.recurrence):
                problems.append(
                    Problem(
                        f"scheduledActions[{index}].recurrence",
                        f"{action.recurrence!r} is not a cron expression",
                    )
                )
    return problems


def _validate(data: object, provider: str) -> tuple[DeploymentParams | None, list[Problem]]:
    if provider not in PROVIDERS:
        return None, [Problem("provider", f"unknown provider {provider!r}")]
    if not isinstance(data, Mapping):
        return None, [Problem("", "deployment-params must be a JSON object")]
    try:
        params = DeploymentParams.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(_path(error["loc"]), _message(error)) for error in exc.errors(include_url=False)
        ]
        # Check the rest too, without the broken top-level fields, so that one run names every
        # problem (a bad volume and min > max both show up).
        broken = {error["loc"][0] for error in exc.errors() if error["loc"]}
        rest = {key: value for key, value in data.items() if key not in broken}
        try:
            partial = DeploymentParams.model_validate(rest)
        except ValidationError:
            return None, problems
        reported = {problem.field for problem in problems}
        problems += [
            problem
            for problem in _cross_field_problems(partial, provider)
            if problem.field.split("[")[0].split(".")[0] not in broken
            and problem.field not in reported
        ]
        return None, problems
    return params, _cross_field_problems(params, provider)


def deployment_params_problems(data: object, *, provider: str) -> list[Problem]:
    """Every problem of ``data`` as a deployment-params document for ``provider`` (aws|local)."""
    return _validate(data, provider)[1]


def parse_deployment_params(data: object, *, provider: str) -> DeploymentParams:
    """The typed, defaulted params; InvalidInput listing every problem (``field`` = the first)."""
    params, problems = _validate(data, provider)
    if problems or params is None:
        raise InvalidInput(
            "invalid deployment-params.json: " + "; ".join(str(p) for p in problems),
            field=problems[0].field or None if problems else None,
        )
    return params


def default_deployment_params(provider: str) -> dict[str, Any]:
    """Minimal valid content for a new repository's ``deployment-params.json``."""
    data: dict[str, Any] = {
        "min": 1,
        "max": 1,
        "desiredCapacity": 1,
        "healthCheckType": "EC2",
    }
    if provider == "aws":
        data["instanceType"] = "t3.micro"
    return data


# application-properties.json and launch-data.json -------------------------------------------


def application_properties_problems(data: object) -> list[Problem]:
    """A flat object of dotted keys → scalars (string, number, boolean)."""
    if not isinstance(data, Mapping):
        return [Problem("", "application-properties must be a JSON object")]
    problems: list[Problem] = []
    for key, value in data.items():
        if not key or any(ch in key for ch in "\n\r=\0 ") or key.strip() != key:
            problems.append(Problem(key, "keys must be non-empty, without spaces, '=' or newlines"))
        elif value is None or isinstance(value, dict | list):
            problems.append(Problem(key, "must be a string, number or boolean"))
        elif isinstance(value, str) and "\0" in value:
            problems.append(Problem(key, "must not contain NUL"))
    if "service.port" in data and not problems:
        try:
            service_port(data)
        except InvalidInput as exc:
            problems.append(Problem("service.port", exc.message))
    if "healthcheck.path" in data and not problems:
        try:
            healthcheck_path(data)
        except InvalidInput as exc:
            problems.append(Problem("healthcheck.path", exc.message))
    return problems


def service_port(props: Mapping[str, Any]) -> int:
    """``service.port`` (default 8080) as an int in 1..65535; InvalidInput otherwise."""
    raw = props.get("service.port", DEFAULT_SERVICE_PORT)
    if isinstance(raw, bool):
        raise InvalidInput("service.port must be a port number", field="service.port")
    try:
        port = int(raw)
    except (TypeError, ValueError):
        raise InvalidInput("service.port must be a port number", field="service.port") from None
    if not 1 <= port <= 65535 or (isinstance(raw, float) and raw != port):
        raise InvalidInput("service.port must be between 1 and 65535", field="service.port")
    return port


def healthcheck_path(props: Mapping[str, Any]) -> str:
    """``healthcheck.path`` (default ``/healthcheck``); must be an absolute URL path."""
    raw = props.get("healthcheck.path", DEFAULT_HEALTHCHECK_PATH)
    if not isinstance(raw, str) or not raw.startswith("/") or any(c.isspace() for c in raw):
        raise InvalidInput(
            "healthcheck.path must be a path starting with '/' without spaces",
            field="healthcheck.path",
        )
    return raw


def default_application_properties() -> dict[str, Any]:
    return {"service.port": DEFAULT_SERVICE_PORT, "healthcheck.path": DEFAULT_HEALTHCHECK_PATH}


def launch_data_problems(data: object) -> list[Problem]:
    """An array of shell command strings."""
    if not isinstance(data, list):
        return [Problem("", "launch-data must be a JSON array of strings")]
    return [
        Problem(f"[{index}]", "must be a string")
        for index, item in enumerate(data)
        if not isinstance(item, str)
    ]


def launch_commands(data: object) -> list[str]:
    """The launch-data commands; InvalidInput if ``data`` is not an array of strings."""
    problems = launch_data_problems(data)
    if problems:
        raise InvalidInput(
            "invalid launch-data.json: " + "; ".join(map(str, problems)), field=problems[0].field
        )
    assert isinstance(data, list)
    return [str(item) for item in data]
