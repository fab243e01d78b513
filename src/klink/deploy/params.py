"""The orchestrator's view of ``deployment-params.json``: typed, defaulted, validated.

The schema is owned by ``klink.config.params`` (``parse_deployment_params``), which validates
and reports every bad field; preparation stores its camelCase JSON (every default filled in)
in the deployment's facts, and this module reads that mapping into the few typed values the
plan and actions use, so a stored plan never depends on a Python model's pickling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from klink.errors import InvalidInput


@dataclass(frozen=True)
class DeployParams:
    instance_type: str = "local"
    min_size: int = 1
    max_size: int = 1
    desired_capacity: int = 1
    default_cooldown: int = 10
    health_check_type: str = "EC2"
    health_check_grace_period: int = 600
    target_groups: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    subnet_purpose: str | None = None
    termination_policies: tuple[str, ...] = ()
    volumes: tuple[dict[str, Any], ...] = ()
    instance_healthy_attempts: int = 120
    load_balancer_healthy_attempts: int = 120
    health_check_interval_seconds: float = 5.0
    skip_instance_healthcheck: bool = False
    pause_after_instances_healthy: bool = False
    pause_after_load_balancers_healthy: bool = False
    pause_after_deregister_old_instances: bool = False
    scale_down_after_deployment: bool = False
    scheduled_actions: tuple[dict[str, Any], ...] = ()
    policies: tuple[dict[str, Any], ...] = ()
    alarms: tuple[dict[str, Any], ...] = ()
    undo_on_failure: bool = False
    keep_previous_group: bool = False


def _int(data: Mapping[str, Any], key: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(
            f"deployment-params.json: {key} must be a non-negative integer", field=key
        )
    return value


def _bool(data: Mapping[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise InvalidInput(f"deployment-params.json: {key} must be true or false", field=key)
    return value


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"deployment-params.json: {key} must be a list of strings", field=key)
    return tuple(value)


def _objects(data: Mapping[str, Any], key: str) -> tuple[dict[str, Any], ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidInput(f"deployment-params.json: {key} must be a list of objects", field=key)
    return tuple(dict(v) for v in value)


def validate_with_config(data: Any, provider: str) -> dict[str, Any]:
    """Validate with the config schema (every problem named); the camelCase mapping with
    every default filled in."""
    from klink.config.params import parse_deployment_params

    parsed = parse_deployment_params(data, provider="aws" if provider == "aws" else "local")
    return parsed.to_json()


def read_params(data: Mapping[str, Any]) -> DeployParams:
    """Typed values from a (validated) deployment-params mapping, with defaults."""
    desired = data.get("desiredCapacity", data.get("desired", data.get("min", 1)))
    params = DeployParams(
        instance_type=str(data.get("instanceType") or "local"),
        min_size=_int(data, "min", 1),
        max_size=_int(data, "max", max(1, desired if isinstance(desired, int) else 1)),
        desired_capacity=_int({"desiredCapacity": desired}, "desiredCapacity", 1),
        default_cooldown=_int(data, "defaultCooldown", 10),
        health_check_type=str(data.get("healthCheckType") or "EC2"),
        health_check_grace_period=_int(data, "healthCheckGracePeriod", 600),
        target_groups=_strings(data, "targetGroups"),
        security_groups=_strings(data, "securityGroups"),
        subnet_purpose=data.get("subnetPurpose"),
        termination_policies=_strings(data, "terminationPolicies"),
        volumes=_objects(data, "volumes"),
        instance_healthy_attempts=_int(data, "instanceHealthyAttempts", 120),
        load_balancer_healthy_attempts=_int(data, "loadBalancerHealthyAttempts", 120),
        health_check_interval_seconds=float(data.get("healthCheckIntervalSeconds", 5)),
        skip_instance_healthcheck=_bool(data, "skipInstanceHealthcheck", False),
        pause_after_instances_healthy=_bool(data, "pauseAfterInstancesHealthy", False),
        pause_after_load_balancers_healthy=_bool(data, "pauseAfterLoadBalancersHealthy", False),
        pause_after_deregister_old_instances=_bool(data, "pauseAfterDeregisterOldInstances", False),
        scale_down_after_deployment=_bool(data, "scaleDownAfterDeployment", False),
        scheduled_actions=_objects(data, "scheduledActions"),
        policies=_objects(data, "policies"),
        alarms=_objects(data, "alarms"),
        undo_on_failure=_bool(data, "undoOnFailure", False),
        keep_previous_group=_bool(data, "keepPreviousGroup", False),
    )
    if not params.min_size <= params.desired_capacity <= params.max_size:
        raise InvalidInput(
            "deployment-params.json: capacity must satisfy min <= desiredCapacity <= max "
            f"(got {params.min_size} <= {params.desired_capacity} <= {params.max_size})",
            field="desiredCapacity",
        )
    return params
