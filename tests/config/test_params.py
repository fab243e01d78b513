"""deployment-params, application-properties and launch-data: a table of cases, one runner."""

from __future__ import annotations

from typing import Any

import pytest

from klink.config.params import (
    application_properties_problems,
    default_deployment_params,
    deployment_params_problems,
    healthcheck_path,
    launch_commands,
    parse_deployment_params,
    service_port,
)
from klink.errors import InvalidInput

# (data, provider, fields with a problem, in order)
CASES: list[tuple[dict[str, Any], str, list[str]]] = [
    ({}, "local", []),
    ({}, "aws", ["instanceType"]),
    ({"instanceType": "t3.small"}, "aws", []),
    ({"min": 2}, "local", ["min", "desiredCapacity"]),
    ({"min": 1, "max": 3, "desiredCapacity": 4}, "local", ["desiredCapacity"]),
    ({"min": 0, "max": 0, "desiredCapacity": 0}, "local", []),
    ({"min": -1}, "local", ["min"]),
    ({"healthCheckType": "TCP"}, "local", ["healthCheckType"]),
    ({"desiredCapcity": 2}, "local", ["desiredCapcity"]),
    ({"volumes": [{"device": "/dev/sdb"}]}, "local", ["volumes[0].sizeGb"]),
    (
        {"volumes": [{"device": "/dev/sdb", "sizeGb": 10, "type": "fast"}]},
        "local",
        ["volumes[0].type"],
    ),
    ({"targetGroups": "web"}, "local", ["targetGroups"]),
    ({"undoOnFailure": "maybe"}, "local", ["undoOnFailure"]),
    (
        {
            "policies": [],
            "alarms": [
                {"name": "cpu", "metricName": "CPUUtilization", "threshold": 70, "policies": ["up"]}
            ],
        },
        "local",
        ["alarms[0].policies[0]"],
    ),
    # Without "policies" the previous group's are carried over: checked at deploy time.
    (
        {
            "alarms": [
                {"name": "cpu", "metricName": "CPUUtilization", "threshold": 70, "policies": ["up"]}
            ]
        },
        "local",
        [],
    ),
    (
        {
            "policies": [
                {"name": "up", "scalingAdjustment": 1},
                {"name": "up", "scalingAdjustment": 2},
            ]
        },
        "local",
        ["policies[1].name"],
    ),
    ({"scheduledActions": [{"name": "night"}]}, "local", ["scheduledActions[0]"]),
    (
        {"scheduledActions": [{"name": "night", "recurrence": "every night"}]},
        "local",
        ["scheduledActions[0].recurrence"],
    ),
    # Every problem at once, structural and cross-field together.
    (
        {"min": 3, "volumes": [{"device": "x"}], "healthCheckType": "TCP"},
        "aws",
        ["healthCheckType", "volumes[0].sizeGb", "instanceType", "min", "desiredCapacity"],
    ),
]


@pytest.mark.parametrize(("data", "provider", "fields"), CASES)
def test_deployment_params_problems(data: dict[str, Any], provider: str, fields: list[str]) -> None:
    problems = deployment_params_problems(data, provider=provider)
    assert [p.field for p in problems] == fields


def test_parse_fills_defaults_and_maps_to_provider_shapes() -> None:
    params = parse_deployment_params(
        {
            "instanceType": "t3.small",
            "volumes": [{"device": "/dev/sdb", "sizeGb": 20}],
            "policies": [{"name": "up", "scalingAdjustment": 1, "cooldown": 60}],
            "alarms": [
                {"name": "cpu", "metricName": "CPUUtilization", "threshold": 70, "policies": ["up"]}
            ],
            "scheduledActions": [
                {"name": "night", "recurrence": "0 22 * * *", "desiredCapacity": 0}
            ],
        },
        provider="aws",
    )
    assert (params.min, params.max, params.desired_capacity) == (1, 1, 1)
    assert params.default_cooldown == 10
    assert params.health_check_grace_period == 600
    assert params.undo_on_failure is False
    assert params.keep_previous_group is False
    assert params.block_devices()[0].size_gb == 20
    assert params.block_devices()[0].volume_type == "gp3"
    assert params.policies[0].to_provider("search-poke-v001").cooldown == 60
    alarm = params.alarms[0].to_provider("search-poke-v001")
    assert alarm.full_name == "search-poke-v001-cpu"
    assert alarm.policies == ("up",)
    assert params.scheduled_actions[0].to_provider("g").desired_capacity == 0
    assert params.to_json()["desiredCapacity"] == 1


def test_parse_raises_one_error_listing_every_problem() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_deployment_params({"min": 2, "healthCheckType": "X"}, provider="aws")
    assert caught.value.field == "healthCheckType"
    for field in ("healthCheckType", "instanceType", "min", "desiredCapacity"):
        assert field in caught.value.message


@pytest.mark.parametrize("provider", ["aws", "local"])
def test_the_defaults_are_valid(provider: str) -> None:
    assert deployment_params_problems(default_deployment_params(provider), provider=provider) == []


def test_not_an_object_and_unknown_provider() -> None:
    assert [p.message for p in deployment_params_problems([], provider="local")] == [
        "deployment-params must be a JSON object"
    ]
    assert deployment_params_problems({}, provider="gcp")[0].field == "provider"


def test_application_properties() -> None:
    assert service_port({}) == 8080
    assert service_port({"service.port": "9000"}) == 9000
    assert healthcheck_path({}) == "/healthcheck"
    assert healthcheck_path({"healthcheck.path": "/ping"}) == "/ping"
    for bad in (0, 70000, True, "http", 80.5):
        with pytest.raises(InvalidInput) as caught:
            service_port({"service.port": bad})
        assert caught.value.field == "service.port"
    with pytest.raises(InvalidInput):
        healthcheck_path({"healthcheck.path": "ping"})
    problems = application_properties_problems(
        {"ok.key": 1, "nested": {"a": 1}, "bad key": "x", "none": None}
    )
    assert [p.field for p in problems] == ["nested", "bad key", "none"]
    assert application_properties_problems({"service.port": 0})[0].field == "service.port"
    assert application_properties_problems([1])[0].field == ""


def test_launch_data() -> None:
    assert launch_commands(["echo hi", "touch /x"]) == ["echo hi", "touch /x"]
    with pytest.raises(InvalidInput) as caught:
        launch_commands(["ok", 3])
    assert caught.value.field == "[1]"
    with pytest.raises(InvalidInput):
        launch_commands({"a": "b"})
