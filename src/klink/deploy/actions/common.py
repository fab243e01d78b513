"""Helpers shared by the deployment-phase actions: waiting, and the groups they act on."""

from __future__ import annotations

from klink.deploy.context import Context
from klink.deploy.model import Failed, GroupState, Outcome, RetryAfter
from klink.errors import NotFound
from klink.providers.base import Group

GONE_ATTEMPTS = 360


def wait(ctx: Context, limit: int, reason: str) -> Outcome:
    """Not yet: try again after the poll interval, or fail once ``limit`` attempts are spent."""
    if ctx.attempt >= max(1, limit):
        return Failed(f"gave up after {ctx.attempt} attempts: {reason}")
    return RetryAfter(poll_interval(ctx), reason)


def poll_interval(ctx: Context) -> float:
    raw = (ctx.facts.get("params") or {}).get("healthCheckIntervalSeconds", 5)
    try:
        return max(0.0, min(float(raw), 30.0))
    except (TypeError, ValueError):
        return 5.0


def find_group(ctx: Context, state: GroupState | None) -> Group | None:
    if state is None:
        return None
    try:
        return ctx.provider().describe_group(state.name)
    except NotFound:
        return None


def required_healthy(state: GroupState) -> int:
    """At least ``min`` instances (one when min is 0 but some are wanted)."""
    if state.min_size > 0:
        return state.min_size
    return 1 if state.desired_capacity > 0 else 0
