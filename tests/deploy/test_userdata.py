"""User-data: every generated document is valid against cloud-init's own JSON schema (vendored
in ``data/``), and no value can break out of its line or its file."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from klink.deploy import userdata

SCHEMA = json.loads((Path(__file__).parent / "data" / "schema-cloud-config-v1.json").read_text())

HOSTILE = [
    "plain",
    "",
    "with space",
    "new\nline",
    "export EVIL=1\n",
    "'; rm -rf / #",
    '"$(reboot)"',
    "`id`",
    "back\\slash",
    "tab\tand\rcr",
    "key=value",
    "#comment",
    "  leading",
    "unicode é ✓ \u2028 sep",
    "- path: /etc/passwd\n  content: owned",
    "\x00nul\x07bell",
    "...\n---\n#cloud-config",
]


def render(properties: dict[str, Any], launch: list[str] | None = None, **over: str) -> str:
    args: dict[str, Any] = {
        "app": "search",
        "env": "prod",
        "group": "search-prod-v001",
        "version": "1.2",
        "config_commit": "a" * 40,
        "region": "eu-west-1",
        "properties": properties,
        "launch_data": launch or [],
    }
    args.update(over)
    return userdata.render(**args)


def parse_properties(text: str) -> dict[str, str]:
    """A strict reader of the escapes ``properties_file`` writes (Java properties rules)."""
    out: dict[str, str] = {}
    for line in text.split("\n"):
        if not line:
            continue
        key, value, i, in_key = [], [], 0, True
        while i < len(line):
            char = line[i]
            if char == "\\":
                nxt = line[i + 1]
                if nxt == "u":
                    char, i = chr(int(line[i + 2 : i + 6], 16)), i + 4
                else:
                    char = {"n": "\n", "r": "\r", "t": "\t", "f": "\f"}.get(nxt, nxt)
                i += 2
                (key if in_key else value).append(char)
                continue
            if in_key and char == "=":
                in_key = False
            else:
                (key if in_key else value).append(char)
            i += 1
        out["".join(key)] = "".join(value)
    return out


def test_document_is_valid_cloud_config() -> None:
    document = render({"service.port": 8080, "a.b": "c"}, ["echo hello", "systemctl start x"])
    assert document.startswith("#cloud-config\n")
    data = yaml.safe_load(document)
    jsonschema.validate(data, SCHEMA)
    assert [f["path"] for f in data["write_files"]] == [
        "/etc/profile.d/klink.sh",
        "/etc/search.properties",
    ]
    assert data["runcmd"] == ["echo hello", "systemctl start x"]


@pytest.mark.parametrize("value", HOSTILE)
def test_no_value_breaks_out(value: str) -> None:
    properties = {"hostile.value": value, f"key{value}": "v", "zzz.last": "end"}
    document = render(properties, [value], version=value, config_commit=value)
    data = yaml.safe_load(document)
    jsonschema.validate(data, SCHEMA)
    # Exactly the two files, at their paths: nothing injected a file or a key.
    assert len(data["write_files"]) == 2
    assert set(data) == {"write_files", "runcmd"}
    assert data["runcmd"] == [value]
    props = data["write_files"][1]["content"]
    assert props.count("\n") == 3  # one line per key, whatever the values hold
    assert parse_properties(props) == {
        "hostile.value": value,
        f"key{value}": "v",
        "zzz.last": "end",
    }
    # The profile script sets exactly the six variables, to exactly the values.
    script = data["write_files"][0]["content"]
    tokens = shlex.split(script, comments=True)
    assert tokens[::2] == ["export"] * 6
    exports = dict(token.split("=", 1) for token in tokens[1::2])
    assert exports["KLINK_VERSION"] == value
    assert exports["KLINK_CONFIG_COMMIT"] == value
    assert set(exports) == {
        "KLINK_APP",
        "KLINK_ENV",
        "KLINK_GROUP",
        "KLINK_VERSION",
        "KLINK_CONFIG_COMMIT",
        "KLINK_REGION",
    }


@pytest.mark.parametrize("value", [v for v in HOSTILE if "\x00" not in v])
def test_profile_script_in_a_real_shell(value: str, tmp_path: Path) -> None:
    """sh itself reads back exactly the value, and runs nothing else."""
    data = yaml.safe_load(render({}, version=value))
    script = tmp_path / "klink.sh"
    script.write_text(data["write_files"][0]["content"])
    done = subprocess.run(
        ["sh", "-c", f'. "{script}"; printf %s "$KLINK_VERSION"'],
        capture_output=True,
        check=True,
    )
    assert done.stdout.decode() == value
    assert done.stderr == b""


def test_properties_sorted_and_typed() -> None:
    text = userdata.properties_file({"b": True, "a": 1, "c": None, "d": 1.5})
    assert text == "a=1\nb=true\nc=\nd=1.5\n"


def test_launch_data_must_be_strings() -> None:
    from klink.errors import InvalidInput

    with pytest.raises(InvalidInput):
        render({}, [["not", "a", "string"]])  # type: ignore[list-item]
