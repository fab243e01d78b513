"""Health gates: instances healthy, then target groups healthy. Waiting, never blocking.

Where the provider's instances are reachable (``http_probes``: the local provider, on
loopback addresses) an instance is healthy when ``GET http://{ip}:{port}{path}`` answers 200,
with the port and path of the group's own recorded health gate (``GroupState.health``: an undo
checks the group it restores with that group's values, not the new config's); elsewhere (AWS)
health is read from the API only: the group's
instance health and the target groups' target health. Nothing ever probes a non-loopback
address.
"""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor

from klink.deploy.actions.common import find_group, required_healthy, wait
from klink.deploy.actions.registry import action
from klink.deploy.context import Context
from klink.deploy.model import Done, Failed, Outcome
from klink.providers.base import IN_SERVICE

PROBE_THREADS = 16


def probe_url(ip: str, port: int, path: str) -> str | None:
    """The health URL of an instance, or None when its address is not loopback."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if not address.is_loopback:
        return None
    host = f"[{ip}]" if address.version == 6 else ip
    return f"http://{host}:{port}{path}"


@action("wait_instances_healthy")
def wait_instances_healthy(ctx: Context) -> Outcome:
    target = ctx.target
    assert target is not None
    group = find_group(ctx, target)
    if group is None:
        return Failed(f"group {target.name} is missing")
    in_service = [i for i in group.instances if i.lifecycle_state == IN_SERVICE]
    needed = required_healthy(target)
    gate = target.health
    if ctx.provider().http_probes:
        port, path = gate.port, gate.path
        urls = []
        for instance in in_service:
            url = probe_url(instance.private_ip or "", port, path)
            if url is None:
                return Failed(f"instance {instance.id} has no loopback address to probe")
            urls.append(url)
        healthy = sum(probe_all(ctx, urls))
    else:
        healthy = sum(1 for i in in_service if i.health.lower() == "healthy")
    if healthy >= needed:
        return Done(f"{healthy} instances healthy (at least {needed} needed)")
    where = f"port {gate.port} {gate.path}"
    return wait(
        ctx, gate.timeout, f"{healthy}/{needed} instances healthy on {where}", gate.interval
    )


def probe_all(ctx: Context, urls: list[str]) -> list[bool]:
    """Probe every instance at once: the gate then costs one probe's time, not one per
    instance (16 instances one after another took ~1 s of an undo's 2 s)."""
    if len(urls) <= 1:
        return [ctx.services.probe(url) for url in urls]
    with ThreadPoolExecutor(max_workers=min(len(urls), PROBE_THREADS)) as pool:
        return list(pool.map(ctx.services.probe, urls))


@action("wait_target_groups_healthy")
def wait_target_groups_healthy(ctx: Context) -> Outcome:
    target = ctx.target
    assert target is not None
    if not target.target_groups:
        return Done("no target groups")
    group = find_group(ctx, target)
    if group is None:
        return Failed(f"group {target.name} is missing")
    ids = {i.id for i in group.instances if i.lifecycle_state == IN_SERVICE}
    provider = ctx.provider()
    waiting: list[str] = []
    for name in target.target_groups:
        states = {t.instance_id: t.state for t in provider.target_health(name)}
        healthy = sum(1 for i in ids if states.get(i) == "healthy")
        if healthy < len(ids) or healthy < required_healthy(target):
            waiting.append(f"{name} {healthy}/{len(ids)}")
    if not waiting:
        return Done(f"{len(ids)} instances healthy in {', '.join(target.target_groups)}")
    gate = target.health
    reason = "target groups not healthy: " + "; ".join(waiting)
    return wait(ctx, gate.balancer_timeout, reason, gate.interval)
