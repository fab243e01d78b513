"""Which deployment group a balancer server belongs to, read from the server's name.

HAProxy's Prometheus exporter labels each server's series with ``proxy`` (the backend, i.e. the
target group) and ``server`` (the server's name) only. The local balancer names a server after
its group (the assumption this module rests on): the name *starts with* the group's name
``{app}-{env}-v{NNN}``, optionally followed by anything that does not begin with a digit
(``hello-dev-v002``, ``hello-dev-v002-3``, ``hello-dev-v002_s0``, ``hello-dev-v002.i-ab12``).
A server whose name carries no group (a free slot, ``s7``) belongs to none and is never counted.

``SERVER_GROUP_REGEX`` is the one definition: Python reads it in ``group_of_server`` and
Prometheus in the relabel rule that ``promserver`` writes (``relabel_rule``), which copies the
group into a ``group`` label at scrape time, so that queries select ``{group="hello-dev-v002"}``.
The regex uses only what both Python's ``re`` and Prometheus's RE2 understand, and Prometheus
anchors it at both ends as ``re.fullmatch`` does.
"""

from __future__ import annotations

import re
from typing import Any

from klink.names import NAME_RULE

GROUP_LABEL = "group"
_NAME = NAME_RULE.removeprefix("^").removesuffix("$")
GROUP_REGEX = f"{_NAME}-{_NAME}-v[0-9]{{3}}"
SERVER_GROUP_REGEX = f"({GROUP_REGEX})(?:[^0-9].*)?"
_SERVER_GROUP = re.compile(SERVER_GROUP_REGEX)
_GROUP = re.compile(GROUP_REGEX)


def group_of_server(server: str) -> str | None:
    """The group a server named ``server`` belongs to, or None."""
    match = _SERVER_GROUP.fullmatch(server)
    return match.group(1) if match else None


def is_group_name(value: str) -> bool:
    return _GROUP.fullmatch(value) is not None


def relabel_rule() -> dict[str, Any]:
    """The Prometheus ``metric_relabel_configs`` entry that adds the ``group`` label."""
    return {
        "source_labels": ["server"],
        "regex": SERVER_GROUP_REGEX,
        "target_label": GROUP_LABEL,
        "replacement": "$1",
        "action": "replace",
    }
