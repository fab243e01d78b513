"""Group names as the analysis checks them before they go into a query.

A group is selected in a metric query by its name, ``{app}-{env}-v{NNN}``, in the ``group``
label (Prometheus: the label that the local cloud's daemon adds to every server series of its
HAProxy at scrape time, ``providers/local/metrics.py``) or in a CloudWatch dimension. A name is
checked against the group-name rule first, so that no value can rewrite a query.
"""

from __future__ import annotations

import re

from klink.names import NAME_RULE

_NAME = NAME_RULE.removeprefix("^").removesuffix("$")
GROUP_REGEX = f"{_NAME}-{_NAME}-v[0-9]{{3}}"
_GROUP = re.compile(GROUP_REGEX)


def is_group_name(value: str) -> bool:
    return _GROUP.fullmatch(value) is not None
