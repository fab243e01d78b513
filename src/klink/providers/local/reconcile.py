"""The local cloud's control loop: what Auto Scaling and ELB do in the background.

Each step, under the cloud's lock: restart HAProxy if it died; notice dead instances (replaced
unless ``Terminate`` or ``ReplaceUnhealthy`` is suspended, in which case they stay, Unhealthy);
bring each group to its desired count (launching in parallel on the cloud's thread pool unless
``Launch`` is suspended; terminating the newest extras unless ``Terminate`` is); walk
terminating instances through drain → SIGTERM → SIGKILL after the grace period → gone; finish
drains; remove deleted groups once empty.
Launches run outside the lock; a finished launch is ``InService`` and, unless
``AddToLoadBalancer`` is suspended, registered with its group's target groups and with every
balancer its group is a traffic member of.
"""

from __future__ import annotations

import logging
import secrets
import signal
import threading
from typing import Any

from klink.providers import base
from klink.providers.local import instances, processes
from klink.providers.local.cloud import ACTIVE, LocalCloud
from klink.providers.local.images import remove_tree

log = logging.getLogger("klink.local")

LAUNCH_BACKOFF_SECONDS = 2.0


def run(cloud: LocalCloud, stop: threading.Event, interval: float = 0.1) -> None:
    while not stop.is_set():
        try:
            step(cloud)
        except Exception:
            log.exception("local cloud reconcile step failed")
        cloud.wake.wait(interval)
        cloud.wake.clear()


def adopt(cloud: LocalCloud) -> None:
    """After a (re)start: drop launches that died with the previous daemon, restart HAProxy."""
    with cloud.lock:
        for rec in list(cloud.state.instances.values()):
            if rec["pid"] is None:
                _remove(cloud, rec)
        if cloud.state.target_groups and not cloud.lb.running():
            cloud.lb.apply(cloud.backends())
        cloud.save()


def step(cloud: LocalCloud) -> None:
    with cloud.lock:
        if cloud.state.target_groups and not cloud.lb.running():
            log.warning("haproxy is not running; starting it")
            cloud.lb.apply(cloud.backends())
        _check_processes(cloud)
        for name in list(cloud.state.groups):
            _size_group(cloud, name)
        _terminate_step(cloud)
        cloud.finish_drains()


def _check_processes(cloud: LocalCloud) -> None:
    for rec in list(cloud.state.instances.values()):
        if rec["pid"] is None or rec["state"] != base.IN_SERVICE or cloud.instance_alive(rec):
            continue
        group = cloud.state.groups.get(rec["group"], {})
        if {"Terminate", "ReplaceUnhealthy"} & set(group.get("suspended", ())):
            if not rec.get("dead"):
                log.info("instance %s died; replacement suspended, keeping it", rec["id"])
                rec["dead"] = True
                cloud.save()
            continue
        log.info("instance %s died; removing it", rec["id"])
        cloud.forget_instance(rec["id"])
        _remove(cloud, rec)


def _size_group(cloud: LocalCloud, name: str) -> None:
    group = cloud.state.groups[name]
    members = [r for r in cloud.state.instances.values() if r["group"] == name]
    if group["deleting"]:
        for rec in members:
            _begin_terminate(cloud, rec)
        if not members:
            for table in (
                cloud.state.policies,
                cloud.state.alarms,
                cloud.state.scheduled,
                cloud.state.notifications,
            ):
                table.pop(name, None)
            del cloud.state.groups[name]
            cloud.forget_member(name)
            cloud.save()
        return
    active = [r for r in members if r["state"] in ACTIVE]
    missing = group["desired"] - len(active)
    suspended = set(group["suspended"])
    if missing > 0 and "Launch" not in suspended and cloud.clock() >= group["backoff_until"]:
        for _ in range(missing):
            _start_launch(cloud, name, group)
    elif missing < 0 and "Terminate" not in suspended:
        newest = sorted(active, key=lambda r: (r["launched"], r["id"]), reverse=True)
        for rec in newest[:-missing]:
            _begin_terminate(cloud, rec)


def _start_launch(cloud: LocalCloud, group_name: str, group: dict[str, Any]) -> None:
    spec: base.GroupSpec = group["spec"]
    template = cloud.state.templates.get(spec.launch_template)
    if template is None:
        group["backoff_until"] = cloud.clock() + LAUNCH_BACKOFF_SECONDS
        return
    instance_id = "i-" + secrets.token_hex(8)
    rec = {
        "id": instance_id,
        "group": group_name,
        "image_id": template.image_id,
        "ip": cloud.state.allocate_address(cloud.addresses),
        "state": base.PENDING,
        "launched": cloud.now(),
        "pid": None,
        "started": None,
        "dead": False,
        "term_at": None,
    }
    cloud.state.instances[instance_id] = rec
    cloud.save()
    cloud.pool.submit(_launch, cloud, rec["id"], rec["image_id"], rec["ip"], template.user_data)


def _launch(cloud: LocalCloud, instance_id: str, image_id: str, ip: str, user_data: str) -> None:
    try:
        process = instances.launch(cloud.layout, cloud.images, instance_id, image_id, ip, user_data)
    except Exception as exc:
        log.warning("instance %s failed to launch: %s", instance_id, exc)
        path = cloud.layout.log_path(instance_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            handle.write(f"klink: launch failed: {exc}\n")
        with cloud.lock:
            rec = cloud.state.instances.get(instance_id)
            if rec is not None:
                group = cloud.state.groups.get(rec["group"])
                if group is not None:
                    group["backoff_until"] = cloud.clock() + LAUNCH_BACKOFF_SECONDS
                _remove(cloud, rec)
        return
    pid, started = instances.identity(process)
    with cloud.lock:
        cloud.popen[instance_id] = process
        rec = cloud.state.instances.get(instance_id)
        if rec is None:
            processes.signal_group(pid, started or 0, signal.SIGKILL)
            return
        rec.update(pid=pid, started=started)
        if rec["state"] == base.PENDING:
            rec["state"] = base.IN_SERVICE
            group = cloud.state.groups.get(rec["group"])
            if group is not None and "AddToLoadBalancer" not in group["suspended"]:
                for tg in group["spec"].target_groups:
                    if tg in cloud.state.target_groups:
                        cloud.register(tg, instance_id)
                for tg in cloud.memberships(rec["group"]):
                    cloud.register(tg, instance_id, member=rec["group"])
        cloud.save()


def _begin_terminate(cloud: LocalCloud, rec: dict[str, Any]) -> None:
    if rec["state"] != base.TERMINATING:
        rec["state"] = base.TERMINATING
        cloud.save()


def _terminate_step(cloud: LocalCloud) -> None:
    for rec in list(cloud.state.instances.values()):
        if rec["state"] != base.TERMINATING:
            continue
        targets = cloud.targets_of(rec["id"])
        if targets and not rec.get("dead") and cloud.instance_alive(rec):
            for tg, key in targets:
                cloud.drain(tg, key)
            cloud.save()
            continue
        if rec["pid"] is None:
            continue  # still launching; stopped once its process exists
        if not cloud.instance_alive(rec):
            cloud.forget_instance(rec["id"])
            _remove(cloud, rec)
        elif rec["term_at"] is None:
            processes.signal_group(rec["pid"], rec["started"], signal.SIGTERM)
            rec["term_at"] = cloud.clock()
            cloud.save()
        elif cloud.clock() - rec["term_at"] >= cloud.grace_seconds:
            processes.signal_group(rec["pid"], rec["started"], signal.SIGKILL)


def _remove(cloud: LocalCloud, rec: dict[str, Any]) -> None:
    cloud.state.instances.pop(rec["id"], None)
    process = cloud.popen.pop(rec["id"], None)
    if process is not None:
        process.poll()
    remove_tree(cloud.layout.instance_dir(rec["id"]))
    cloud.save()


def stop_everything(cloud: LocalCloud) -> None:
    """``klink stop``: stop every instance (SIGTERM, then SIGKILL after the grace) and HAProxy."""
    with cloud.lock:
        records = list(cloud.state.instances.values())
    for rec in records:
        if rec["pid"] is not None:
            processes.signal_group(rec["pid"], rec["started"], signal.SIGTERM)
    for rec in records:
        if rec["pid"] is not None:
            processes.stop(rec["pid"], rec["started"], grace=cloud.grace_seconds)
        process = cloud.popen.pop(rec["id"], None)
        if process is not None:
            process.poll()
    cloud.lb.stop()
