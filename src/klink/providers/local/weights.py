"""How a member's weight becomes HAProxy server weights: one pure function, shared by the
rendered config and the runtime API so that both always say the same.

A member's weight (0..100) is its share of requests, whatever its number of instances: each of
its live servers gets ``weight / servers``, and the whole backend is scaled so that the largest
server weight is HAProxy's maximum (256), which keeps rounding small (a share is off by less
than a point with 16 servers a side). A member with weight > 0 gives each server at least 1;
draining servers get nothing (they are in HAProxy's drain state anyway).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from klink.providers.local.haproxy import MAX_WEIGHT

DIRECT_DEFAULT = 100  # the direct member's weight before a balancer carries weights


def member_weights(target_group: str, record: Mapping[str, Any]) -> dict[str, int]:
    """Member → weight of one target group record; the direct member is ``target_group``."""
    weights = record.get("weights")
    if weights is None:
        return {target_group: DIRECT_DEFAULT}
    return {str(k): int(v) for k, v in weights.items()}


def server_weights(target_group: str, record: Mapping[str, Any]) -> dict[str, int]:
    """Target key → HAProxy weight for every live (registered, not draining) target."""
    weights = member_weights(target_group, record)
    members: dict[str, list[str]] = {}
    for key, target in record["targets"].items():
        if not target["draining"]:
            members.setdefault(target.get("member") or target_group, []).append(key)
    raw = {
        key: weights.get(member, 0) / len(keys) for member, keys in members.items() for key in keys
    }
    top = max(raw.values(), default=0.0)
    if not top:
        return dict.fromkeys(raw, 0)
    return {
        key: max(1, round(value * MAX_WEIGHT / top)) if value else 0 for key, value in raw.items()
    }
