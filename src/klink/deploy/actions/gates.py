"""The release gates: the last steps of preparation, after every read and before any cloud
change. ``await_approval`` waits for the environment's approvals, ``await_window`` for its
deployment window to open and its freezes to end.

Both read the environment's rules from the metadata service each time they run (a freeze
declared while a deployment waits holds it too) and the people's decisions from
``Services.decisions``. They wait by returning ``RetryAfter`` (no worker is held) and are not
health waits: no health-gate deadline applies. An approval wait ends with enough approvals, a
rejection, or its own ``expiresAfter`` on the clock (``cancelled``, with the reason); a window
wait ends when the window opens, or at once when an admin overrides it. ``approve``, ``reject``
and ``override`` make a waiting deployment due at once, so the polls below only bound how late
a change of the rules is seen. A rollback is never held (nor is an undo, which never runs
preparation).
"""

from __future__ import annotations

from collections.abc import Sequence

from klink.deploy import lifecycle, rules
from klink.deploy.actions.notify import notify_waiting
from klink.deploy.actions.registry import action
from klink.deploy.approvals import OVERRIDE, REJECT, Decision, approvers
from klink.deploy.context import Context
from klink.deploy.model import Done, Failed, Outcome, RetryAfter
from klink.errors import InvalidInput

APPROVAL_POLL = 60.0  # seconds between looks at an approval's expiry and the rules
WINDOW_POLL = 300.0  # at most this long between looks at a closed window's rules
UNGATED = ("rollback",)  # kinds never held by approvals or windows


def _rules(ctx: Context) -> rules.Rules:
    record = ctx.services.metadata.environment(ctx.deployment.env)
    return rules.of(dict(record.get("metadata") or {}))


def _decisions(ctx: Context) -> Sequence[Decision] | None:
    reader = ctx.services.decisions
    return None if reader is None else reader(ctx.deployment.id)


def span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


@action("await_approval")
def await_approval(ctx: Context) -> Outcome:
    d = ctx.deployment
    if d.kind in UNGATED:
        return Done(f"a {d.kind} needs no approval")
    try:
        found = _rules(ctx).approvals
    except InvalidInput as exc:
        return Failed(f"environment {d.env}: {exc.message}")
    if found is None:
        return Done()
    decisions = _decisions(ctx)
    if decisions is None:
        return Failed("this engine has no record of approvals; it cannot wait for them")
    rejected = next((x for x in decisions if x.decision == REJECT), None)
    if rejected is not None:  # normally applied by `klink reject` itself; this is the backstop
        lifecycle.move(d, "reject")
        d.error = f"rejected by {rejected.actor}: {rejected.message}"
        d.finished_at = ctx.now()
        return Done(d.error)
    got = approvers(decisions)
    if len(got) >= found.required:
        return Done(f"approved by {', '.join(got)}")
    line = f"approvals {len(got)} of {found.required} from {found.who(d.env)}"
    if ctx.attempt == 1:  # the first look: tell the rooms who is asked for what
        notify_waiting(ctx, f"{line}; `klink approve {d.id} -m WHY`")
    poll = APPROVAL_POLL
    if found.expires_after is not None:
        left = found.expires_after - ctx.waited()
        if left <= 0:
            lifecycle.move(d, "expire")
            d.error = f"approval expired after {span(found.expires_after)}: {line}"
            d.finished_at = ctx.now()
            return Done(d.error)
        poll = min(poll, left)
    return RetryAfter(poll, line)


@action("await_window")
def await_window(ctx: Context) -> Outcome:
    d = ctx.deployment
    if d.kind in UNGATED:
        return Done(f"a {d.kind} is never held by a window")
    try:
        found = _rules(ctx)
    except InvalidInput as exc:
        return Failed(f"environment {d.env}: {exc.message}")
    if not found.windows and not found.freezes:
        return Done()
    now = ctx.now()
    opening = found.opening(now)
    if opening.now:
        return Done("inside the deployment window" if found.windows else "no freeze now")
    decisions = _decisions(ctx) or ()
    override = next((x for x in reversed(decisions) if x.decision == OVERRIDE), None)
    if override is not None:
        return Done(f"{opening.reason}: overridden by {override.actor}: {override.message}")
    seconds = (opening.at - now).total_seconds()
    return RetryAfter(min(WINDOW_POLL, max(1.0, seconds)), opening.reason)
