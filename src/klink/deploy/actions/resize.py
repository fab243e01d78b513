"""A resize: a one-step deployment (recorded, logged, holding the app+env slot like any other)
that sets the sizes of the group in traffic."""

from __future__ import annotations

from klink.deploy import lifecycle
from klink.deploy.actions.common import find_group
from klink.deploy.actions.registry import action
from klink.deploy.context import Context
from klink.deploy.model import DEPLOY, PREPARE, Done, Failed, Outcome


@action("complete_resize_preparation", reads=True)
def complete_resize_preparation(ctx: Context) -> Outcome:
    d = ctx.deployment
    if d.previous is None:
        return Failed(f"{d.app}/{d.env} has no group to resize")
    sizes = ctx.prep.require("resize")
    if not sizes["min"] <= sizes["desired"] <= sizes["max"]:
        return Failed("sizes must satisfy min <= desired <= max")
    if d.phase == PREPARE:  # idempotent: a second run finds it prepared
        lifecycle.move(d, "prepared")
        d.phase = DEPLOY
    return Done(f"resizing {d.previous.name}")


@action("resize_current_group")
def resize_current_group(ctx: Context) -> Outcome:
    group = find_group(ctx, ctx.previous)
    if group is None:
        return Failed("the group to resize is gone")
    sizes = ctx.prep.require("resize")
    ctx.provider().resize_group(
        group.name,
        min_size=sizes["min"],
        max_size=sizes["max"],
        desired_capacity=sizes["desired"],
    )
    return Done(
        f"{group.name}: min {group.min_size}->{sizes['min']}, max {group.max_size}->"
        f"{sizes['max']}, desired {group.desired_capacity}->{sizes['desired']}"
    )
