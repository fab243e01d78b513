"""Traffic by weight: a group joins its balancers at weight 0, is checked healthy through them,
then takes its share of the traffic in one ``set_traffic`` call per balancer.

A group's *member* on a target group is its own name when it was deployed over weights
(``GroupState.weighted``), or the target group's direct member (named like the target group)
when its instances are registered directly: a balancer deployed before weights moves to them
without a gap, and an undo to such a group shifts traffic back to the direct member.

``shift_traffic`` sets the new group's weight (100, or a rolling step's) and gives the rest to
the group being retired; every other member with a weight drops to 0, so after a shift to 100
all traffic is on one group. ``keep_warm`` holds the old group attached at weight 0: an undo in
that window starts with ``restore_traffic_if_warm``, one weight change back, and every later
step of the undo finds its work done. Every shift is logged with the weights it set
("traffic on web: hello-dev-v004 100, hello-dev-v003 0"). A shift that is already in place
makes no call, so resumed and undone plans never move traffic twice.
"""

from __future__ import annotations

from collections.abc import Mapping

from klink.deploy.actions.common import find_group, wait
from klink.deploy.actions.registry import action
from klink.deploy.context import Context
from klink.deploy.model import Done, Failed, GroupState, Outcome, RetryAfter
from klink.errors import NotFound
from klink.providers.base import IN_SERVICE, PENDING, TrafficState


def member(state: GroupState, target_group: str) -> str:
    """The name ``state`` has among ``target_group``'s members."""
    return state.name if state.weighted else target_group


def needed(state: GroupState) -> int:
    """Healthy instances a group needs through the balancer: its whole size (at least one)."""
    return max(1, state.desired_capacity)


def describe(target_group: str, weights: Mapping[str, int]) -> str:
    shown = ", ".join(f"{name} {weight}" for name, weight in weights.items())
    return f"traffic on {target_group}: {shown}"


def shift(ctx: Context, state: TrafficState, weights: dict[str, int]) -> str | None:
    """Set ``weights`` on the balancer in one call unless they are set already; the log line."""
    current = state.weights()
    if all(current.get(name) == weight for name, weight in weights.items()):
        return None
    ctx.provider().set_traffic(state.target_group, weights)
    return describe(state.target_group, weights)


def weights_for(state: TrafficState, new: str, old: str | None, weight: int) -> dict[str, int]:
    """``new`` at ``weight``, ``old`` (when a member) at the rest, every other member at 0."""
    wanted = {new: weight}
    if old is not None and state.get(old) is not None and old != new:
        wanted[old] = 100 - weight
    for item in state.groups:
        if item.name not in wanted and item.weight > 0:
            wanted[item.name] = 0
    if not any(wanted.values()):
        wanted[new] = 100  # nothing else can serve: the new group takes everything
    return wanted


def _in_service(ctx: Context, state: GroupState) -> list[str]:
    group = find_group(ctx, state)
    if group is None:
        return []
    return [i.id for i in group.instances if i.lifecycle_state in (IN_SERVICE, PENDING)]


@action("attach_traffic")
def attach_traffic(ctx: Context) -> Outcome:
    target = ctx.target
    assert target is not None
    if not target.target_groups:
        return Done("no target groups")
    if find_group(ctx, target) is None:
        return Failed(f"group {target.name} is missing")
    provider = ctx.provider()
    for name in target.target_groups:
        if target.weighted:
            provider.attach_traffic(name, target.name)
        else:
            provider.register_instances(name, _in_service(ctx, target))
    how = "at weight 0" if target.weighted else "directly (registered before weights)"
    return Done(f"{target.name} attached to {', '.join(target.target_groups)} {how}")


@action("wait_traffic_healthy")
def wait_traffic_healthy(ctx: Context) -> Outcome:
    """Healthy through the balancer (its own health checks), whatever the group's weight."""
    target = ctx.target
    assert target is not None
    if not target.target_groups:
        return Done("no target groups")
    waiting: list[str] = []
    for name in target.target_groups:
        found = ctx.provider().traffic(name).get(member(target, name))
        healthy = found.healthy if found is not None else 0
        if healthy < needed(target):
            waiting.append(f"{name} {healthy}/{needed(target)}")
    if not waiting:
        where = ", ".join(target.target_groups)
        return Done(f"{target.name}: {needed(target)} instances healthy through {where}")
    gate = target.health
    reason = f"{target.name} not healthy through the balancer: " + "; ".join(waiting)
    return wait(ctx, gate.balancer_timeout, reason, gate.interval)


@action("shift_traffic")
def shift_traffic(ctx: Context) -> Outcome:
    """The target group takes ``weight`` percent (default 100), the retiring one the rest."""
    target, retiring = ctx.target, ctx.retiring
    assert target is not None
    weight = int(ctx.step.arg("weight", 100))
    lines = []
    for name in target.target_groups:
        state = ctx.provider().traffic(name)
        old = member(retiring, name) if retiring is not None else None
        line = shift(ctx, state, weights_for(state, member(target, name), old, weight))
        if line:
            lines.append(line)
    if not target.target_groups:
        return Done("no target groups")
    return Done("; ".join(lines) if lines else f"traffic already at {weight} on {target.name}")


def _hold(ctx: Context, seconds: float, reason: str) -> Outcome:
    """Done once ``seconds`` have passed since the action first ran (a deadline on the clock,
    so a resumed or restarted engine waits only what is left)."""
    left = seconds - ctx.waited()
    if left <= 0:
        return Done()
    return RetryAfter(left, reason)


@action("keep_warm")
def keep_warm(ctx: Context) -> Outcome:
    """The old group stays attached at weight 0 for ``seconds``: an undo now is one call."""
    old, target = ctx.retiring, ctx.target
    seconds = float(ctx.step.arg("seconds", 0))
    if old is None or target is None or not old.target_groups or find_group(ctx, old) is None:
        return Done("no old group to keep warm")
    outcome = _hold(ctx, seconds, f"{old.name} warm at weight 0 for {seconds:g} s")
    if isinstance(outcome, Done):
        return Done(f"{old.name} kept warm {seconds:g} s")
    return outcome


@action("hold_traffic")
def hold_traffic(ctx: Context) -> Outcome:
    """A rolling step's ``pauseSeconds``: watch the new group at its weight before the next."""
    seconds = float(ctx.step.arg("seconds", 0))
    weight = ctx.step.arg("weight", "?")
    outcome = _hold(ctx, seconds, f"holding at {weight}% for {seconds:g} s")
    return Done(f"held at {weight}% for {seconds:g} s") if isinstance(outcome, Done) else outcome


@action("detach_traffic")
def detach_traffic(ctx: Context) -> Outcome:
    """The retiring group leaves its balancers (a direct member stays; its instances are
    deregistered by ``deregister_old_instances``). A member still weighted is set to 0 first,
    its traffic going to the others (to the direct member when no other has any: undoing a
    first deployment leaves nothing serving, as before weights)."""
    old = ctx.retiring
    if old is None or not old.target_groups:
        return Done("nothing to detach")
    provider, lines = ctx.provider(), []
    for name in old.target_groups:
        try:
            state = provider.traffic(name)
        except NotFound:
            continue
        mine = member(old, name)
        found = state.get(mine)
        if found is not None and found.weight > 0:
            others = {g.name: g.weight for g in state.groups if g.name != mine and g.weight > 0}
            weights = {mine: 0, **({} if others else {name: 100})}
            provider.set_traffic(name, weights)
            lines.append(describe(name, weights))
        if old.weighted and found is not None:
            provider.detach_traffic(name, old.name)
            lines.append(f"{old.name} detached from {name}")
    return Done("; ".join(lines) if lines else None)


@action("restore_traffic_if_warm")
def restore_traffic_if_warm(ctx: Context) -> Outcome:
    """Undo while warm: if the group to restore is attached to every target group and healthy
    there, all traffic goes back to it in one call per target group; else nothing happens here
    and the rest of the undo does the work."""
    restore, remove = ctx.target, ctx.retiring
    if restore is None or not restore.target_groups:
        return Done("nothing warm to restore")
    provider = ctx.provider()
    states = []
    for name in restore.target_groups:
        try:
            state = provider.traffic(name)
        except NotFound:
            return Done(f"{name} is gone: restoring step by step")
        found = state.get(member(restore, name))
        if found is None or found.healthy < needed(restore):
            return Done(f"{restore.name} is not warm behind {name}: restoring step by step")
        states.append(state)
    lines = []
    for state in states:
        name = state.target_group
        old = member(remove, name) if remove is not None else None
        line = shift(ctx, state, weights_for(state, member(restore, name), old, 100))
        if line:
            lines.append(line)
    return Done("; ".join(lines) + " (undo while warm)" if lines else "traffic already restored")
