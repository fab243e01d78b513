"""Push-time input checks around ``DeploymentParams``: what the model's lax parsing lets by.

The model (``params.py``) parses leniently, as the orchestrator reads files that were valid
when pushed. At push time (the pre-receive hook, ``POST /config/validate``) the file must also
be exact, so that a deploy never meets a value it refuses:

- strict types: an integer is not ``"1"``, ``true`` or ``1.0``; a boolean is not ``"yes"`` or
  ``1``; a number is not a string;
- ``service.port`` in application-properties.json an integer too;
- capacities (``min``, ``max``, ``desiredCapacity`` and a scheduled action's sizes) at most
  ``klink.limits.MAX_INSTANCES``; every other integer within 32 bits (what the cloud APIs take).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from klink.config.params import DeploymentParams, Problem
from klink.limits import MAX_INSTANCES, path_of

MAX_INT32 = 2**31 - 1
_CAPACITIES = frozenset({"min", "max", "desiredCapacity", "minSize", "maxSize"})
_KINDS = {"int_type": "an integer", "bool_type": "true or false", "float_type": "a number"}


def _strict_problems(data: Mapping[str, Any]) -> list[Problem]:
    try:
        DeploymentParams.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        return [
            Problem(
                path_of(tuple(error["loc"])),
                f"must be {_KINDS[error['type']]}, not {json.dumps(error['input'])}",
            )
            for error in exc.errors(include_url=False)
            if error["type"] in _KINDS and not isinstance(error["input"], dict | list)
        ]
    return []


def _range_problems(data: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, Mapping):
            stack.extend((child, (*path, str(key))) for key, child in value.items())
        elif isinstance(value, list):
            stack.extend((child, (*path, index)) for index, child in enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            capacity = bool(path) and path[-1] in _CAPACITIES
            bound = MAX_INSTANCES if capacity else MAX_INT32
            if not -MAX_INT32 - 1 <= value <= bound:
                what = "instances" if capacity else "(32-bit)"
                problems.append(Problem(path_of(path), f"must be at most {bound} {what}"))
    return sorted(problems, key=lambda p: p.field)


def properties_problems(data: object) -> list[Problem]:
    """``service.port`` of application-properties is a JSON integer (the orchestrator reads
    ``"8080"`` too, but a push is exact)."""
    if not isinstance(data, Mapping) or "service.port" not in data:
        return []
    port = data["service.port"]
    if isinstance(port, bool) or not isinstance(port, int):
        return [Problem("service.port", f"must be an integer, not {json.dumps(port)}")]
    return []


def input_problems(data: object) -> list[Problem]:
    """The strictness and range problems of a deployment-params document (an object)."""
    if not isinstance(data, Mapping):
        return []
    return _strict_problems(data) + _range_problems(data)
