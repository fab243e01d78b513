"""Read-side helpers of the deploy API: images, boxes and statistics."""

from __future__ import annotations

from collections import Counter
from typing import Any

from klink import names
from klink.deploy.actions.discover import TAG_KEPT, in_service
from klink.deploy.context import Services
from klink.deploy.preparation import TAG_TRAFFIC
from klink.providers.base import TAG_ROLE, Group, Provider


def provider(services: Services, env: str) -> Provider:
    record = services.metadata.environment(env)
    return services.provider_for(env, dict(record.get("metadata") or {}))


def images(services: Services, app: str, env: str) -> list[dict[str, Any]]:
    found = provider(services, env).list_images(app)
    return [
        {
            "id": i.id,
            "name": i.name,
            "state": i.state,
            "version": i.version,
            "createdAt": i.created_at.isoformat() if i.created_at else None,
            "embargoed": env in i.embargo,
        }
        for i in found
    ]


def _roles(groups: list[Group], current: str) -> dict[str, str]:
    """What each group is doing, where it is more than serving: a canary's ``baseline`` and
    ``canary`` (the current group while a baseline exists), a ``kept`` group."""
    roles = {}
    for g in groups:
        if g.tags.get(TAG_ROLE) == "baseline":
            roles[g.name] = "baseline"
        elif g.tags.get(TAG_KEPT) == "true":
            roles[g.name] = "kept"
    if "baseline" in roles.values():
        roles[current] = "canary"
    return roles


def boxes(services: Services, app: str, env: str) -> dict[str, Any]:
    """The current group's instances, and every member of its balancers with its weight and
    health through the balancer (``groups``: during a rolling step or while the old group is
    kept warm, both groups show)."""
    p = provider(services, env)
    found = p.list_groups(names.group_pattern(app, env).pattern)
    group = next((g for g in found if in_service(g)), None)
    if group is None:
        return {"group": None, "boxes": [], "groups": []}
    roles = _roles(found, group.name)
    members = [n for n in group.tags.get(TAG_TRAFFIC, "").split(",") if n]
    target_groups = members or list(group.target_groups)
    health: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for name in target_groups:
        state = p.traffic(name)
        mine = state.get(group.name if members else name)
        where = mine.target if mine is not None and mine.target else name
        for target in p.target_health(where):
            health.setdefault(target.instance_id, target.state)
        rows += [
            {
                "targetGroup": name,
                "name": item.name,
                "weight": item.weight,
                "share": round(state.share(item.name), 4),
                "registered": item.registered,
                "healthy": item.healthy,
                "draining": item.draining,
                "direct": item.direct,
                "role": roles.get(item.name),
            }
            for item in state.groups
        ]
    return {
        "group": group.name,
        "boxes": [
            {
                "id": i.id,
                "address": i.private_ip,
                "image": i.image_id,
                "state": i.lifecycle_state,
                "health": health.get(i.id, i.health),
            }
            for i in group.instances
        ],
        "groups": rows,
    }


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 3)


def stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    durations = [
        (r["finished_at"] - r["created_at"]).total_seconds()
        for r in rows
        if r["status"] == "completed" and r["finished_at"] is not None
    ]
    outcome = Counter("undone" if r["undo"] else r["status"] for r in rows)
    return {
        "total": len(rows),
        "byApp": dict(Counter(r["app"] for r in rows)),
        "byEnv": dict(Counter(r["env"] for r in rows)),
        "byUser": dict(Counter(r["user"] for r in rows)),
        "byOutcome": dict(outcome),
        "durationSeconds": {
            "p50": _percentile(durations, 0.5),
            "p90": _percentile(durations, 0.9),
            "p99": _percentile(durations, 0.99),
        },
    }
