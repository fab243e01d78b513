"""The ``canary`` section of deployment-params.json: defaults, and every problem named by path.

``WithCanary`` is DeploymentParams with the ``canary`` field that the strategy adds to it, so
the paths below are the ones a push shows (through params.py's own path and message rules).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from klink.config.canary import BUILTINS, CanaryParams
from klink.config.params import DeploymentParams, _message, _path


class WithCanary(DeploymentParams):
    canary: CanaryParams | None = None


def problems(canary: Any) -> dict[str, str]:
    try:
        WithCanary.model_validate({"canary": canary})
    except ValidationError as exc:
        return {_path(e["loc"]): _message(e) for e in exc.errors(include_url=False)}
    return {}


def test_an_empty_canary_gets_useful_defaults() -> None:
    canary = WithCanary.model_validate({"canary": {}}).canary
    assert canary is not None
    assert (canary.weight, canary.intervals, canary.interval_seconds) == (10, 3, 300)
    assert canary.step_seconds is None
    assert [m.builtin for m in canary.metrics] == list(BUILTINS)
    assert [m.critical for m in canary.metrics] == [True, False, False]
    assert all(m.direction == "increase" for m in canary.metrics)
    assert (canary.thresholds.pass_, canary.thresholds.marginal) == (95.0, 75.0)
    # Inside deployment-params, its JSON form (every default filled in) reads back the same.
    full = WithCanary.model_validate({"canary": {}}).to_json()
    assert full["canary"]["thresholds"] == {"pass": 95.0, "marginal": 75.0}
    assert WithCanary.model_validate(full).canary == canary
    assert WithCanary.model_validate({}).canary is None


def test_camel_case_in_and_out() -> None:
    data = {
        "weight": 25,
        "intervals": 2,
        "intervalSeconds": 60,
        "stepSeconds": 5,
        "metrics": [
            {"name": "errors", "builtin": "error-rate", "critical": True, "minEffect": 0.02},
            {
                "name": "orders",
                "query": 'sum(rate(orders_total{group="$group"}[$step]))',
                "direction": "decrease",
                "tolerance": 0.2,
            },
        ],
        "thresholds": {"pass": 90, "marginal": 50},
    }
    canary = CanaryParams.model_validate(data)
    assert canary.metrics[0].min_effect == 0.02
    assert canary.metrics[1].direction == "decrease"
    assert canary.thresholds.pass_ == 90
    out = canary.to_json()
    assert out["intervalSeconds"] == 60
    assert out["thresholds"] == {"pass": 90.0, "marginal": 50.0}
    assert CanaryParams.model_validate(out) == canary


def test_frozen() -> None:
    canary = CanaryParams()
    with pytest.raises(ValidationError):
        canary.weight = 20  # type: ignore[misc]


@pytest.mark.parametrize(
    ("canary", "field", "words"),
    [
        ({"weight": 0}, "canary.weight", "greater than or equal to 1"),
        ({"weight": 51}, "canary.weight", "less than or equal to 50"),
        ({"intervals": 0}, "canary.intervals", "greater than or equal"),
        ({"intervalSeconds": "soon"}, "canary.intervalSeconds", "integer"),
        ({"intervalSeconds": 30, "stepSeconds": 60}, "canary.stepSeconds", "must not exceed"),
        ({"metrics": []}, "canary.metrics", "at least one metric"),
        ({"metrics": [{"name": "x"}]}, "canary.metrics[0].builtin", "a query or a builtin"),
        (
            {"metrics": [{"name": "x", "query": "up", "builtin": "error-rate"}]},
            "canary.metrics[0].builtin",
            "not both",
        ),
        (
            {"metrics": [{"name": "x", "builtin": "error-count"}]},
            "canary.metrics[0].builtin",
            "'error-rate', 'latency-p50' or 'latency-p99'",
        ),
        (
            {"metrics": [{"name": "x", "builtin": "error-rate", "direction": "up"}]},
            "canary.metrics[0].direction",
            "'increase', 'decrease' or 'either'",
        ),
        (
            {"metrics": [{"name": "Bad Name", "builtin": "error-rate"}]},
            "canary.metrics[0].name",
            "",
        ),
        (
            {"metrics": [{"name": "x", "query": ""}]},
            "canary.metrics[0].query",
            "at least 1 character",
        ),
        (
            {"metrics": [{"name": "x", "builtin": "error-rate", "tolerance": -1}]},
            "canary.metrics[0].tolerance",
            "greater than or equal to 0",
        ),
        (
            {
                "metrics": [
                    {"name": "a", "builtin": "error-rate"},
                    {"name": "a", "builtin": "latency-p99"},
                ]
            },
            "canary.metrics[1].name",
            "duplicate name 'a'",
        ),
        ({"thresholds": {"pass": 101}}, "canary.thresholds.pass", "less than or equal to 100"),
        (
            {"thresholds": {"pass": 70, "marginal": 80}},
            "canary.thresholds.marginal",
            "must not exceed pass (70)",
        ),
        ({"thresholds": {"marginal": 96}}, "canary.thresholds.marginal", "exceed pass (95)"),
        ({"wieght": 10}, "canary.wieght", "unknown field"),
        ({"metrics": [{"name": "x", "builtin": "error-rate", "critcal": True}]}, "", ""),
        ("ten percent", "canary", ""),
    ],
)
def test_each_problem_is_named_by_its_path(canary: Any, field: str, words: str) -> None:
    found = problems(canary)
    if not field:  # the typo'd key itself is the path
        assert found == {"canary.metrics[0].critcal": "unknown field"}
        return
    assert field in found, found
    assert words in found[field]
    assert len(found) == 1, found


def test_every_problem_at_once() -> None:
    found = problems(
        {
            "weight": 0,
            "metrics": [{"name": "x"}, {"name": "y", "builtin": "nope"}],
            "thresholds": {"pass": 50, "marginal": 60},
        }
    )
    assert set(found) == {
        "canary.weight",
        "canary.metrics[0].builtin",
        "canary.metrics[1].builtin",
        "canary.thresholds.marginal",
    }
