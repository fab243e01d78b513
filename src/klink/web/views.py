"""Pure functions that shape service answers for the templates: times, durations, waits in
words, health counts, the overview grid and diffs. No I/O here, so each is tested alone."""

from __future__ import annotations

import difflib
import hashlib
import shlex
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from klink import names
from klink.errors import InvalidInput

FINAL = ("completed", "invalid", "cancelled")

# What a waiting action waits for, in words (actions not named here are shown by their name).
WAITS = {
    "wait_instances_exist": "the new group's instances to be launched",
    "wait_instances_in_service": "the new instances to be in service in their group",
    "wait_instances_healthy": "the new instances to pass their health checks",
    "wait_target_groups_healthy": "the load balancer to see the new instances as healthy",
    "wait_old_drained": "the old instances to drain their connections",
    "wait_old_group_gone": "the old group to be deleted",
    "wait_stale_kept_groups_gone": "stale kept groups to be deleted",
    "pause_point": "a person to resume it",
    "show_instructions": "a person to read the instructions and resume it",
}


def filter_name(value: str | None, field: str) -> str | None:
    """A name filter of a page: None when empty, a 400 naming ``field`` when not a name."""
    if not value:
        return None
    if not names.is_valid_name(value):
        raise InvalidInput(
            f"{field} {value!r} is not a name (lower-case letters and digits, starting with a "
            "letter)",
            field=field,
        )
    return value


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def between(start: str | None, end: str | None, now: datetime | None = None) -> str:
    """The duration from ``start`` to ``end`` (to ``now`` while it runs)."""
    began, ended = parse_time(start), parse_time(end)
    if began is None:
        return ""
    finish = ended or now
    return "" if finish is None else duration((finish - began).total_seconds())


def ago(value: str | None, now: datetime) -> str:
    at = parse_time(value)
    return "" if at is None else f"{duration((now - at).total_seconds())} ago"


def short(value: str | None, size: int = 10) -> str:
    return "" if not value else value[:size]


def waiting_for(d: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]]) -> str:
    """What the deployment waits for and why, in one sentence."""
    status, current = d.get("status"), d.get("current")
    task = next((t for t in tasks if t.get("action") == current), None)
    note = f" ({task['message']})" if task and task.get("message") else ""
    attempts = f", attempt {task['attempts']}" if task and task.get("attempts", 0) > 1 else ""
    what = WAITS.get(str(current), f"its action {current}") if current else ""
    if status == "completed":
        return "Nothing: it completed."
    if status in ("invalid", "cancelled"):
        return f"Nothing: it is {status}{': ' + d['error'] if d.get('error') else '.'}"
    if status == "failed":
        why = d.get("error") or "an action failed"
        return (
            f"A person: it failed at {current} ({why}). Retry it, undo it, or unlock the "
            "app+env to deploy again."
        )
    if status == "paused":
        done = [t for t in tasks if t.get("status") == "done" and t.get("message")]
        why = f" ({done[-1]['message']})" if done else ""
        return f"A person to resume it: paused{why}; next is {current}."
    if status == "preparing":
        return f"Preparation: {what}{attempts}{note}." if what else "Preparation."
    return f"Waiting for {what}{attempts}{note}." if what else "Running."


def plan_rows(
    plan: Sequence[Mapping[str, Any]], tasks: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Every action of the plan with its task record, when it has one (else pending)."""
    by_seq = {t["seq"]: t for t in tasks}
    rows = []
    for seq, step in enumerate(plan):
        task = by_seq.get(seq) or {}
        rows.append(
            {
                "seq": seq,
                "action": task.get("action") or step.get("name"),
                "phase": task.get("phase") or step.get("phase"),
                "status": task.get("status") or "pending",
                "attempts": task.get("attempts", 0),
                "startedAt": task.get("startedAt"),
                "endedAt": task.get("endedAt"),
                "message": task.get("message"),
            }
        )
    return rows


def commands(d: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The CLI commands that act on this deployment, for copying (the UI changes nothing)."""
    app, env, status = d["app"], d["env"], d.get("status")
    target = f"{shlex.quote(app)} {shlex.quote(env)}"
    found: list[tuple[str, str]] = []
    if status in ("preparing", "running"):
        found.append(("pause", f"klink pause {target}"))
        found.append(("cancel", f"klink cancel {target}"))
    if status == "paused":
        found.append(("resume", f"klink resume {target}"))
        found.append(("cancel", f"klink cancel {target}"))
    if status == "failed":
        found.append(("retry", f"klink retry {target}"))
        found.append(("unlock", f"klink unlock {target}"))
    if status in ("running", "paused", "failed", "completed") and not d.get("undo"):
        found.append(("undo", f'klink undo {target} -m "why"'))
    return found


def health(boxes: Iterable[Mapping[str, Any]], desired: int | None) -> dict[str, Any]:
    """``{healthy, total, desired, ok}`` of a group's instances."""
    items = list(boxes)
    healthy = sum(1 for b in items if str(b.get("health", "")).lower() == "healthy")
    want = desired if desired is not None else len(items)
    return {"healthy": healthy, "total": len(items), "desired": want, "ok": healthy >= want > 0}


def grid(
    apps: Sequence[Mapping[str, Any]],
    envs: Sequence[Mapping[str, Any]],
    running: Sequence[Mapping[str, Any]],
    in_progress: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """One row per application, one cell per environment: what runs there and what is on
    its way."""
    runs = {(r["app"], r["env"]): r for r in running}
    moving = {(d["app"], d["env"]): d for d in in_progress}
    env_names = [e["name"] for e in envs]
    return [
        {
            "app": a["name"],
            "cells": [
                {"env": e, "run": runs.get((a["name"], e)), "moving": moving.get((a["name"], e))}
                for e in env_names
            ],
        }
        for a in apps
    ]


def text_diff(before: str | None, after: str | None, a: str, b: str) -> str:
    lines = difflib.unified_diff(
        (before or "").splitlines(keepends=True),
        (after or "").splitlines(keepends=True),
        fromfile=a,
        tofile=b,
    )
    return "".join(lines)


def user_data(d: Mapping[str, Any]) -> str | None:
    state = d.get("newState") or {}
    launch = state.get("launch") or {}
    value = launch.get("user_data")
    return str(value) if value is not None else None


def params_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every key whose value differs between two parameter objects, sorted."""
    keys = sorted(set(a) | set(b))
    return [
        {"key": k, "a": a.get(k), "b": b.get(k)}
        for k in keys
        if a.get(k) != b.get(k) or (k in a) != (k in b)
    ]


def links(metadata: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Metadata values that are web addresses, shown as links."""
    return sorted(
        (k, v)
        for k, v in metadata.items()
        if isinstance(v, str) and v.startswith(("https://", "http://"))
    )


def digest(value: Any) -> str:
    """A short, stable name of a fingerprint, for ``?since=``."""
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def deployment_fingerprint(d: dict[str, Any]) -> tuple[Any, ...]:
    return (d["status"], d["cursor"], d["updatedAt"], d["undo"])


def overview_fingerprint(moving: list[dict[str, Any]]) -> tuple[Any, ...]:
    return tuple((d["id"], d["status"], d["cursor"], d["updatedAt"]) for d in moving)


def number(value: Any) -> str:
    """A measured value in four significant digits; a dash for none."""
    if value is None:
        return "-"
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)
