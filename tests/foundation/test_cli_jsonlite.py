"""The CLI's JSON (C accelerators without the json package) reads and writes as json does."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from klink.cli import jsonlite

VALUES = [
    {},
    [],
    {"b": 1, "a": [1, 2.5, -3e-7, 1e100, True, False, None], "é": 'ünï\u2603\n\t"\\'},
    [{"x": {"y": {"z": []}}}, [[], [{}]], "", 0, -0.0, 10**30],
    {10: "int key", 9: "int key", 2.5: "float key"},
    "plain",
    3.14,
    [float("nan"), float("inf"), float("-inf")],
]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize(("indent", "sort_keys"), [(None, False), (2, True), (2, False)])
def test_dumps_is_json_dumps(value: object, indent: int | None, sort_keys: bool) -> None:
    assert jsonlite.dumps(value, indent=indent, sort_keys=sort_keys) == json.dumps(
        value, indent=indent, sort_keys=sort_keys
    )


def test_default_and_loads() -> None:
    when = datetime(2026, 1, 2, tzinfo=UTC)
    assert jsonlite.dumps({"at": when}, default=str) == json.dumps({"at": when}, default=str)
    with pytest.raises(TypeError):
        jsonlite.dumps({"at": when})
    for value in VALUES[:4]:
        text = json.dumps(value)
        assert jsonlite.loads(f"  {text}\n") == json.loads(text)
    assert jsonlite.loads(b'{"a": "\\u00e9"}') == {"a": "é"}
    for bad in ("", "{", "[1,]", "{} x", "nope"):
        with pytest.raises(ValueError, match=r"(?i)expecting|extra data|not json"):
            jsonlite.loads(bad)
