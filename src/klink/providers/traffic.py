"""Traffic by weight: the value types of the providers' traffic capability, and its one check.

A balancer (named by its target group) has *members*: deployment groups attached to it, plus
the target group's own direct registrations (a member named like the target group). Each
member has a weight 0..100 and gets ``weight / sum(weights)`` of the requests. The contract is
written on ``Provider``'s traffic methods (``base.py``); every provider validates a change with
``merge_weights`` so that all of them refuse the same inputs with the same errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from klink.errors import InvalidInput

MAX_WEIGHT = 100


@dataclass(frozen=True)
class GroupTraffic:
    """One member of a balancer, as the balancer sees it."""

    name: str  # the deployment group, or the target group's own name for direct registrations
    weight: int  # 0..100
    registered: int = 0  # instances registered and not draining
    healthy: int = 0  # of those, passing the balancer's health checks
    draining: int = 0  # instances on their way out (no new requests)
    direct: bool = False  # True for the target group's own registrations
    # Where its instances are registered: on AWS the member's own target group; locally the
    # HAProxy backend (the same for every member).
    target: str | None = None
    # Locally, the HAProxy servers (``backend/sN``) of its instances, in slot order: how a
    # server's metrics are told apart by group. Empty on AWS (targets have no server names).
    servers: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrafficState:
    target_group: str
    groups: tuple[GroupTraffic, ...] = ()  # sorted by name

    @property
    def total(self) -> int:
        return sum(g.weight for g in self.groups)

    def get(self, name: str) -> GroupTraffic | None:
        return next((g for g in self.groups if g.name == name), None)

    def weights(self) -> dict[str, int]:
        return {g.name: g.weight for g in self.groups}

    def share(self, name: str) -> float:
        """The fraction of requests that member ``name`` gets (0.0 when it is no member)."""
        member = self.get(name)
        return member.weight / self.total if member is not None and self.total else 0.0


def merge_weights(
    target_group: str, current: Mapping[str, int], weights: Mapping[str, object]
) -> dict[str, int]:
    """``current`` with ``weights`` applied, or InvalidInput (field ``weights``) naming why."""
    if not isinstance(weights, Mapping) or not weights:
        raise InvalidInput("weights must name at least one member", field="weights")
    merged = dict(current)
    for name, weight in weights.items():
        if name not in current:
            members = ", ".join(sorted(current)) or "none"
            raise InvalidInput(
                f"{name} is not attached to {target_group} (members: {members})", field="weights"
            )
        if isinstance(weight, bool) or not isinstance(weight, int):
            raise InvalidInput(f"the weight of {name} must be an integer", field="weights")
        if not 0 <= weight <= MAX_WEIGHT:
            raise InvalidInput(
                f"the weight of {name} must be 0..{MAX_WEIGHT}, not {weight}", field="weights"
            )
        merged[name] = weight
    if not any(merged.values()):
        raise InvalidInput(
            f"at least one member of {target_group} must keep a weight above 0", field="weights"
        )
    return merged
