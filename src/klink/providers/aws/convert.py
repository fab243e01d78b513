"""Small pure helpers shared by the AWS modules: tags, timestamps, ARNs, batching."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")


def tags_of(raw: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in raw or ()}


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def parse_time(value: object) -> datetime | None:
    """AWS timestamps arrive as datetimes (most APIs) or ISO strings (image CreationDate)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def arn_resource_name(arn: str, marker: str) -> str:
    """The name part of an ARN after ``marker``: ``…:targetgroup/NAME/id`` → NAME."""
    _, _, rest = arn.partition(marker)
    return rest.split("/", 1)[0]


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def newest_first(created: datetime | None) -> tuple[int, float]:
    """Sort key: newest first, unknown creation times last."""
    return (0, -created.timestamp()) if created else (1, 0.0)


# Target groups that the traffic capability makes, one per (balancer, deployment group).
MEMBER_PREFIX = "kt-"


def member_target_group(target_group: str, group: str) -> str:
    """The name of ``group``'s own target group behind ``target_group`` (32 characters at
    most, as ELBv2 requires): ``kt-<8 hex of both names>-<the group name's tail>``."""
    digest = hashlib.sha256(f"{target_group}\0{group}".encode()).hexdigest()[:8]
    tail = group[-(32 - len(MEMBER_PREFIX) - 9) :].strip("-")
    return f"{MEMBER_PREFIX}{digest}-{tail}"


def forward_of(listener: Mapping[str, Any]) -> dict[str, int] | None:
    """Target group ARN → weight of a listener's default forward action, or None."""
    for action in listener.get("DefaultActions", ()):
        if action.get("Type") != "forward":
            continue
        config = action.get("ForwardConfig") or {}
        groups = config.get("TargetGroups") or ()
        if groups:
            return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
        if action.get("TargetGroupArn"):
            return {action["TargetGroupArn"]: 100}
    return None
