"""Canary actions: the baseline group's state, the canary's traffic, and each interval's judgement.

``build_baseline_state`` (preparation, reads only) describes the baseline group of
``strategy: canary``: the previous group's launch (its image, config commit and user-data),
fresh, under the next free group name, as big as the canary, tagged ``klink:role=baseline`` so
that discovery never takes it for the group in service. The launch and retire actions then
serve it unchanged through steps with ``group="baseline"`` (``Context.target``).

``canary_traffic`` gives the canary and the baseline ``weight`` percent each, the production
group the rest, in one ``set_traffic`` call per target group.

``analyse_canary`` judges one interval: it waits (without holding a worker) until the interval
is over and its last samples are in, reads every metric of both groups from the environment's
metric source (``klink.analysis``), judges canary against baseline, and stores the report with
the deployment (``Preparation.canary_reports``). A failed interval fails the action, and the
canary strategy undoes the deployment; a marginal one pauses it with the report for a person to
resume or undo; a passed one lets the plan go on (to the next interval, or to the promotion).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from klink import names
from klink.config.canary import CanaryParams
from klink.deploy.actions.notify import notify_waiting
from klink.deploy.actions.registry import action
from klink.deploy.actions.weights import member, shift
from klink.deploy.context import Context
from klink.deploy.model import Done, Failed, Outcome, RetryAfter
from klink.deploy.preparation import TAG_TRAFFIC
from klink.providers import base

if TYPE_CHECKING:  # the analysis imports scipy: only when a canary is judged
    from klink.analysis.judge import IntervalReport
    from klink.analysis.sources import MetricSource

ROLE_BASELINE = "baseline"


def canary_params(ctx: Context) -> CanaryParams:
    return ctx.params().canary or CanaryParams()


@action("build_baseline_state", reads=True)
def build_baseline_state(ctx: Context) -> Outcome:
    params, previous, new = ctx.params(), ctx.previous, ctx.new
    if params.strategy != "canary":
        return Done()
    if previous is None or new is None or not new.target_groups:
        ctx.update(baseline=None)
        why = "no group in service" if previous is None else "no target groups"
        return Done(f"canary: {why} to compare with; deploying red-black")
    if previous.launch is None:
        return Failed(
            f"canary: the baseline needs {previous.name}'s launch template, which is gone; "
            "deploy with strategy redblack"
        )
    d, size = ctx.deployment, canary_params(ctx).instances
    taken = [g.name for g in ctx.provider().list_groups(names.group_pattern(d.app, d.env).pattern)]
    name = names.next_group_name(d.app, d.env, new.name, [*taken, new.name])
    now = ctx.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    tags = {
        **dict(previous.tags),
        "Name": name,
        base.TAG_ROLE: ROLE_BASELINE,
        base.TAG_DEPLOYMENT: d.id,
        base.TAG_DEPLOYED_AT: now,
        TAG_TRAFFIC: ",".join(new.target_groups),  # a member by weight, as the canary
    }
    baseline = replace(
        previous,
        name=name,
        launch=replace(
            previous.launch,
            name=names.launch_template_name(name, ctx.now()),
            tags={**dict(previous.launch.tags), **tags},
        ),
        min_size=size,
        max_size=size,
        desired_capacity=size,
        target_groups=new.target_groups,
        suspended_processes=(),
        tags=tags,
        policies=(),
        alarms=(),
        scheduled_actions=(),
        weighted=True,
    )
    ctx.update(baseline=baseline.to_json(), canary_reports=())
    return Done(
        f"canary: baseline {name} ({previous.image_id}, config {previous.config_commit}) "
        f"beside canary {new.name}, {size} instance{'s' if size != 1 else ''} each"
    )


def _weights(
    state: base.TrafficState,
    canary: str,
    baseline: str,
    production: str | None,
    weight: int,
) -> dict[str, int]:
    wanted = {canary: weight, baseline: weight}
    if production is not None and state.get(production) is not None:
        wanted[production] = 100 - 2 * weight
    for item in state.groups:
        if item.name not in wanted and item.weight > 0:
            wanted[item.name] = 0
    return wanted


@action("canary_traffic")
def canary_traffic(ctx: Context) -> Outcome:
    canary, baseline, production = ctx.target, ctx.baseline, ctx.retiring
    if canary is None or baseline is None:
        return Failed("canary traffic needs a canary and a baseline group")
    weight = int(ctx.step.arg("weight", canary_params(ctx).weight))
    lines = []
    for name in canary.target_groups:
        state = ctx.provider().traffic(name)
        prod = member(production, name) if production is not None else None
        line = shift(ctx, state, _weights(state, canary.name, baseline.name, prod, weight))
        if line:
            lines.append(line)
    return Done("; ".join(lines) if lines else f"canary traffic already at {weight}%")


def _source_name(source: object) -> str:
    kind, url = getattr(source, "kind", "metrics"), getattr(source, "url", None)
    return f"{kind} at {url}" if url else str(kind)


def _close(source: object) -> None:
    close = getattr(source, "close", None)
    if callable(close):
        close()


def _source(ctx: Context) -> MetricSource:
    """The environment's metric source; each group measured through its own member target
    group behind the canary's first target group (aws), else that target group."""
    provider, canary = ctx.provider(), ctx.new
    members: dict[str, str] = {}
    if canary is not None and canary.target_groups:
        balancer = canary.target_groups[0]
        for item in provider.traffic(balancer).groups:
            members[item.name] = item.target or balancer
    return ctx.services.metrics(
        provider, ctx.prep.environment or {}, lambda group: members.get(group, group)
    )


@action("connect_metrics")
def connect_metrics(ctx: Context) -> Outcome:
    """Where the canary's metrics come from, found (and on local started: the daemon's
    Prometheus) before the groups launch, so it has scraped them before the first interval;
    every metric checked by the source (a query it refuses fails the canary here)."""
    source = _source(ctx)
    try:
        for metric in canary_params(ctx).metrics:
            source.check(metric)  # a query the source refuses fails here, before any launch
        return Done(f"canary metrics from {_source_name(source)} (step {source.min_step:g} s)")
    finally:
        _close(source)


def _report_line(report: IntervalReport, total: int) -> str:
    parts = []
    for m in report.metrics:
        if m.verdict == "nodata":
            parts.append(f"{m.name} no data")
            continue
        effect = "" if m.effect is None else f" effect {m.effect:+.4g}"
        p = "" if m.p is None else f" p={m.p:.3g}"
        parts.append(f"{m.name} {m.verdict}{p}{effect}")
    return (
        f"canary interval {report.interval}/{total}: {report.verdict}, score {report.score:.3g}"
        f" ({'; '.join(parts)})"
    )


def _store(ctx: Context, report: IntervalReport, *, early: bool = False) -> None:
    kept = [r for r in ctx.prep.canary_reports if r.get("interval") != report.interval]
    stored = {**report.to_json(), **({"early": True} if early else {})}
    ctx.update(canary_reports=(*kept, stored))


# An early look at the critical metrics, within an interval, is held to this level (against
# 0.05 at the interval's end): with at most three looks an interval, a good canary is failed
# early by chance at most 0.3 % more often, while a version answering 5 % errors shows p < 1e-4
# from 10 values a group.
EARLY_ALPHA = 0.001
EARLY_MIN_VALUES = 8  # values a group before an early look (fewer cannot reach EARLY_ALPHA)


def _early_failure(
    ctx: Context,
    source: MetricSource,
    canary: CanaryParams,
    groups: tuple[str, str],
    start: datetime,
    number: int,
) -> IntervalReport | None:
    """The critical metrics judged on the interval so far; the report if one of them fails."""
    from klink.analysis.sources import analyse, choose_step

    critical = [m for m in canary.metrics if m.critical]
    seen = ctx.now() - timedelta(seconds=source.min_step)  # what has surely been scraped
    step = choose_step(canary, source.min_step)
    if not critical or (seen - start).total_seconds() < EARLY_MIN_VALUES * step:
        return None
    report = analyse(
        source,
        canary,
        baseline=groups[0],
        canary_group=groups[1],
        start=start,
        end=seen,
        interval=number,
        metrics=critical,
        alpha=EARLY_ALPHA,
    )
    return report if report.critical_failures else None


@action("analyse_canary")
def analyse_canary(ctx: Context) -> Outcome:
    """Judge one interval at its end. While it runs, each look (every quarter of it) judges the
    critical metrics on what has been measured so far, at ``EARLY_ALPHA``: a critical metric
    that fails ends the canary there, without waiting for the interval's end."""
    from klink.analysis.sources import analyse

    canary_group, baseline = ctx.target, ctx.baseline
    if canary_group is None or baseline is None:
        return Failed("canary analysis needs a canary and a baseline group")
    canary = canary_params(ctx)
    number, total = int(ctx.step.arg("interval", 1)), canary.intervals
    source = _source(ctx)
    try:
        start = ctx.started_at or ctx.now()
        end = start + timedelta(seconds=canary.interval_seconds)
        # An interval's last samples reach the source a little after it ends (a scrape or two).
        left = (end - ctx.now()).total_seconds() + source.min_step
        if left > 0:
            groups = (baseline.name, canary_group.name)
            early = _early_failure(ctx, source, canary, groups, start, number)
            if early is None:
                return RetryAfter(
                    min(left, max(1.0, canary.interval_seconds / 4)),
                    f"canary interval {number}/{total}: judging in {left:.0f} s",
                )
            report, early_look = early, True
        else:
            report = analyse(
                source,
                canary,
                baseline=baseline.name,
                canary_group=canary_group.name,
                start=start,
                end=end,
                interval=number,
            )
            early_look = False
    finally:
        _close(source)
    _store(ctx, report, early=early_look)
    line = _report_line(report, total) + (" (early look)" if early_look else "")
    if report.verdict == "fail":
        ctx.log(line)
        when = "early in" if early_look else "at"
        return Failed(f"canary failed {when} interval {number}/{total}: {report.reason}")
    if report.verdict == "marginal":
        why = (
            f"canary interval {number}/{total} marginal (score {report.score:.3g}): "
            "resume to go on, undo to stop"
        )
        notify_waiting(ctx, why)  # a person decides: the room is told
        return Done(line, pause=why)
    return Done(line)
