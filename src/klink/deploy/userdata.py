"""User-data: one ``#cloud-config`` document per deployment, rendered by pure functions.

The document writes ``/etc/profile.d/klink.sh`` (``KLINK_*`` exports, every value shell-quoted)
and ``/etc/{app}.properties`` (``key=value`` lines, sorted, escaped the way Java properties are
so that no key or value can end its line early), then runs the launch-data commands with
``runcmd``. YAML is produced by ``yaml.safe_dump``, so no value can break out of its file
either. It is generated once, in preparation, stored in the deployment, and is the only way
config reaches an instance.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from klink.errors import InvalidInput

HEADER = "#cloud-config\n"


def _escape(text: str, *, key: bool) -> str:
    out: list[str] = []
    for index, char in enumerate(text):
        if char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif char == "\f":
            out.append("\\f")
        elif ord(char) < 0x20 or ord(char) == 0x7F or char in "\u2028\u2029\x85":
            out.append(f"\\u{ord(char):04x}")
        elif (key and char in "=: #!") or (not key and index == 0 and char in " #!"):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def property_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float | str):
        return str(value)
    import json

    return json.dumps(value, sort_keys=True)


def properties_file(properties: Mapping[str, Any]) -> str:
    """``key=value`` lines, sorted by key, each key and value escaped onto one line."""
    lines = [
        f"{_escape(str(k), key=True)}={_escape(property_value(v), key=False)}"
        for k, v in sorted(properties.items(), key=lambda kv: str(kv[0]))
    ]
    return "".join(line + "\n" for line in lines)


def profile_script(exports: Mapping[str, str]) -> str:
    lines = ["# Written by Klink at launch; do not edit."]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in sorted(exports.items())]
    return "\n".join(lines) + "\n"


def render(
    *,
    app: str,
    env: str,
    group: str,
    version: str,
    config_commit: str,
    region: str,
    properties: Mapping[str, Any],
    launch_data: Sequence[str],
) -> str:
    """The whole ``#cloud-config`` document of a deployment."""
    for command in launch_data:
        if not isinstance(command, str):
            raise InvalidInput(
                "launch-data.json must be an array of shell command strings", field="launchData"
            )
    exports = {
        "KLINK_APP": app,
        "KLINK_ENV": env,
        "KLINK_GROUP": group,
        "KLINK_VERSION": version,
        "KLINK_CONFIG_COMMIT": config_commit,
        "KLINK_REGION": region,
    }
    document: dict[str, Any] = {
        "write_files": [
            {
                "path": "/etc/profile.d/klink.sh",
                "permissions": "0644",
                "owner": "root:root",
                "content": profile_script(exports),
            },
            {
                "path": f"/etc/{app}.properties",
                "permissions": "0644",
                "owner": "root:root",
                "content": properties_file(properties),
            },
        ],
    }
    if launch_data:
        document["runcmd"] = list(launch_data)
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return HEADER + body
