"""Config push validation under the same input policy as the services: strict integers,
capacities within the deploy's limits, no content that breaks a later read, and never a
traceback shown to the pusher."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from klink.config import files
from tests.config.conftest import ConfigWorld

PARAMS = files.DEPLOYMENT_PARAMS


def _problems(name: str, raw: bytes, provider: str = "local") -> list[tuple[str, str]]:
    return [(p.field, p.message) for p in files.check_file(name, raw, provider)[1]]


def _params(**changes: Any) -> bytes:
    return json.dumps({"min": 1, "max": 2, "desiredCapacity": 1, **changes}).encode()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"min": 10**30, "max": 10**30, "desiredCapacity": 10**30}, "desiredCapacity"),
        ({"max": 1001}, "max"),
        ({"min": 1001, "max": 1001, "desiredCapacity": 1001}, "min"),
        ({"min": "1"}, "min"),
        ({"max": True}, "max"),
        ({"desiredCapacity": 1.0}, "desiredCapacity"),
        ({"skipInstanceHealthcheck": "yes"}, "skipInstanceHealthcheck"),
        ({"undoOnFailure": 1}, "undoOnFailure"),
        ({"defaultCooldown": 2**40}, "defaultCooldown"),
        ({"volumes": [{"device": "/dev/xvdb", "sizeGb": "8"}]}, "volumes[0].sizeGb"),
    ],
)
def test_deployment_params_are_strict_and_within_limits(
    changes: dict[str, Any], field: str
) -> None:
    fields = [f for f, _ in _problems(PARAMS, _params(**changes))]
    assert field in fields, fields


def test_capacities_at_the_limit_are_valid() -> None:
    assert _problems(PARAMS, _params(min=0, max=1000, desiredCapacity=1000)) == []
    assert _problems(PARAMS, _params(healthCheckIntervalSeconds=2)) == []  # an int for a float


def test_a_lone_surrogate_in_application_properties_is_a_problem() -> None:
    raw = b'{"service.port": 8080, "greeting": "\\ud800"}'
    assert _problems(files.APPLICATION_PROPERTIES, raw) == [
        ("greeting", "not valid Unicode (a lone surrogate)")
    ]


@pytest.mark.parametrize("name", [PARAMS, files.LAUNCH_DATA, "infrastructure.yaml"])
def test_deep_nesting_is_a_problem(name: str) -> None:
    raw = ("[" * 10_000 + "]" * 10_000).encode()
    ((_field, message),) = _problems(name, raw)
    assert "deep" in message


def test_non_finite_numbers_are_a_problem() -> None:
    for number in ("NaN", "-Infinity", "1e999"):
        raw = b'{"a": 1, "ratio": %s}' % number.encode()
        assert _problems(files.APPLICATION_PROPERTIES, raw) == [
            ("ratio", "out of range (numbers must be finite)")
        ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("file", "content", "expected"),
    [
        (files.APPLICATION_PROPERTIES, '{"greeting": "\\ud800"}', "greeting: not valid Unicode"),
        (files.LAUNCH_DATA, "[" * 10_000 + "]" * 10_000, "nested too deep"),
        (PARAMS, json.dumps({"min": "1", "max": 2, "desiredCapacity": 1}), "min: "),
        (PARAMS, json.dumps({"max": 10**30}), "max: "),
    ],
)
def test_a_bad_push_is_refused_without_a_traceback(
    world: ConfigWorld, tmp_path: Path, file: str, content: str, expected: str
) -> None:
    world.env("poke", provider="local")
    world.app("search")
    git = world.git()
    work = tmp_path / "work"
    git.run(["clone", "--quiet", world.url("search", "poke"), str(work)])
    (work / file).write_text(content)
    git.run(["commit", "--quiet", "-am", "Hostile"], work)
    pushed = git.run(["push", "origin", "HEAD"], work, check=False)
    assert pushed.returncode != 0
    assert "Traceback" not in pushed.stderr
    assert f"{file}: {expected}" in pushed.stderr, pushed.stderr
    with world.server.client() as http:
        assert len(http.get("/config/repos/search/poke/commits").json()["commits"]) == 1
        read = http.get(f"/config/repos/search/poke/files/{file}")
        assert read.status_code == 200


@pytest.mark.parametrize("port", ['"8080"', "true", "8080.0"])
def test_the_service_port_is_a_json_integer(port: str) -> None:
    raw = f'{{"service.port": {port}}}'.encode()
    problems = _problems(files.APPLICATION_PROPERTIES, raw)
    assert [field for field, _ in problems] == ["service.port"]
    assert problems[0][1].startswith("must be an integer")
    assert _problems(files.APPLICATION_PROPERTIES, b'{"service.port": 8080}') == []
