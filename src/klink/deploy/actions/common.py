"""Helpers shared by the deployment-phase actions: waiting, and the groups they act on."""

from __future__ import annotations

from klink.deploy.context import Context
from klink.deploy.model import Failed, GroupState, Outcome, RetryAfter
from klink.errors import NotFound
from klink.providers.base import Group

GONE_SECONDS = 1800.0  # how long a group may take to be deleted


def wait(ctx: Context, timeout: float, reason: str, interval: float | None = None) -> Outcome:
    """Not yet: look again after ``interval`` (the params' health check interval), or fail once
    ``timeout`` seconds have passed since this action first ran (a deadline on the clock)."""
    waited = ctx.waited()
    if waited >= timeout:
        return Failed(f"gave up after {waited:.0f} s (limit {timeout:.0f} s): {reason}")
    return RetryAfter(interval if interval is not None else poll_interval(ctx), reason)


def poll_interval(ctx: Context) -> float:
    return float(ctx.params().health_check_interval_seconds)


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
