"""``LocalCloud``: the provider interface, implemented for real inside the daemon.

It owns the state (``state.py``), the instances' processes and the HAProxy process. API calls
change the state under one lock and wake the reconciler (``reconcile.py``), which does the slow
work: launching instances in parallel, replacing dead ones, draining and stopping. Nothing here
waits for the world: like the cloud, calls return at once and the orchestrator polls.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from klink.errors import Conflict, InvalidInput, NotFound
from klink.providers import base
from klink.providers.local import addresses, haproxy, instances, latency, processes
from klink.providers.local.extras import ExtrasMixin
from klink.providers.local.images import ImageMethods, ImageStore
from klink.providers.local.metrics import DEFAULT_SCRAPE_SECONDS, MetricsMixin
from klink.providers.local.promserver import PrometheusServer
from klink.providers.local.state import State
from klink.providers.local.traffic import TrafficMixin

ACTIVE = (base.PENDING, base.IN_SERVICE)


class LocalCloud(ImageMethods, TrafficMixin, ExtrasMixin, MetricsMixin, base.Provider):
    name = "local"
    http_probes = True

    def __init__(
        self,
        home: Path,
        *,
        grace_seconds: float = 10.0,
        haproxy_binary: str = "haproxy",
        prometheus_binary: str = "prometheus",
        scrape_interval: float = DEFAULT_SCRAPE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.layout = instances.Layout(Path(home))
        self.layout.local.mkdir(parents=True, exist_ok=True)
        self.images = ImageStore(Path(home))
        self.state_path = self.layout.local / "state.json"
        self.state = State.load(self.state_path)
        self.addresses = addresses.claim(Path(home), self.state.addresses())
        self.lock = threading.RLock()
        self.wake = threading.Event()
        self.clock = clock
        self.grace_seconds = grace_seconds
        self.lb = haproxy.HAProxy(self.layout.local / "haproxy", haproxy_binary)
        self.popen: dict[str, subprocess.Popen[bytes]] = {}
        self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="launch")
        self.prom = PrometheusServer(
            self.layout.local / "prometheus",
            binary=prometheus_binary,
            scrape_interval=scrape_interval,
        )
        self.prom_lock = threading.Lock()
        self.response_times = latency.ResponseTimes(self.server_groups)
        # Started by the daemon (``serve``), which alone reads HAProxy's request log.
        self.request_log = latency.RequestLog(self.lb.log_path, self.response_times)
        self.url: str | None = None  # set by the daemon once it listens

    @classmethod
    def from_environment(
        cls, env: str, metadata: Mapping[str, Any], settings: Any
    ) -> base.Provider:
        raise InvalidInput("LocalCloud runs inside the daemon; use LocalProvider", field="provider")

    def save(self) -> None:
        self.state.save(self.state_path)
        self.wake.set()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # Images (plain files) -----------------------------------------------------------------
    # Launch templates ---------------------------------------------------------------------
    def create_launch_template(self, spec: base.LaunchTemplateSpec) -> base.LaunchTemplate:
        with self.lock:
            existing = self.state.templates.get(spec.name)
            if existing is not None:
                return existing  # type: ignore[no-any-return]
            self.images.describe(spec.image_id)
            template = base.LaunchTemplate(
                id=f"lt-{spec.name}",
                name=spec.name,
                image_id=spec.image_id,
                instance_type=spec.instance_type,
                user_data=spec.user_data,
                security_group_ids=spec.security_group_ids,
                instance_profile=spec.instance_profile,
                key_name=spec.key_name,
                block_devices=spec.block_devices,
                tags=dict(spec.tags),
                created_at=self.now(),
            )
            self.state.templates[spec.name] = template
            self.save()
            return template

    def describe_launch_template(self, name: str) -> base.LaunchTemplate:
        with self.lock:
            template = self.state.templates.get(name)
        if template is None:
            raise NotFound(f"launch template {name} does not exist", field="launch_template")
        return template  # type: ignore[no-any-return]

    def delete_launch_template(self, name: str) -> None:
        with self.lock:
            if self.state.templates.pop(name, None) is not None:
                self.save()

    # Groups -------------------------------------------------------------------------------
    def create_group(self, spec: base.GroupSpec) -> base.Group:
        with self.lock:
            if spec.name in self.state.groups:
                return self.describe_group(spec.name)
            self.describe_launch_template(spec.launch_template)
            _check_sizes(spec.min_size, spec.max_size, spec.desired_capacity)
            for tg in spec.target_groups:
                self.describe_target_group(tg)
            unknown = set(spec.suspended_processes) - set(base.PROCESSES)
            if unknown:
                raise InvalidInput(f"unknown process {sorted(unknown)[0]}", field="processes")
            self.state.groups[spec.name] = {
                "spec": spec,
                "created": self.now(),
                "min": spec.min_size,
                "max": spec.max_size,
                "desired": spec.desired_capacity,
                "suspended": sorted(set(spec.suspended_processes)),
                "tags": dict(spec.tags),
                "deleting": False,
                "backoff_until": 0.0,
            }
            self.save()
            return self.describe_group(spec.name)

    def _group(self, name: str) -> dict[str, Any]:
        group = self.state.groups.get(name)
        if group is None:
            raise NotFound(f"group {name} does not exist", field="group")
        return group

    def describe_group(self, name: str) -> base.Group:
        with self.lock:
            group = self._group(name)
            spec: base.GroupSpec = group["spec"]
            members = [r for r in self.state.instances.values() if r["group"] == name]
            members.sort(key=lambda r: (r["launched"], r["id"]))
            return base.Group(
                name=name,
                launch_template=spec.launch_template,
                min_size=group["min"],
                max_size=group["max"],
                desired_capacity=group["desired"],
                created_at=group["created"],
                default_cooldown=spec.default_cooldown,
                health_check_type=spec.health_check_type,
                health_check_grace_period=spec.health_check_grace_period,
                subnets=("local",),
                termination_policies=spec.termination_policies,
                target_groups=spec.target_groups,
                suspended_processes=frozenset(group["suspended"]),
                tags=dict(group["tags"]),
                instances=tuple(self._instance(r) for r in members),
                status="Delete in progress" if group["deleting"] else None,
            )

    def _instance(self, rec: Mapping[str, Any]) -> base.Instance:
        return base.Instance(
            id=rec["id"],
            lifecycle_state=rec["state"],
            health="Unhealthy" if rec.get("dead") else "Healthy",
            private_ip=rec["ip"],
            launched_at=rec["launched"],
            image_id=rec["image_id"],
            group=rec["group"],
        )

    def list_groups(self, pattern: str | None = None) -> list[base.Group]:
        try:
            regex = re.compile(pattern) if pattern is not None else None
        except re.error as exc:
            raise InvalidInput(f"bad pattern: {exc}", field="pattern") from None
        with self.lock:
            names = [n for n in self.state.groups if regex is None or regex.fullmatch(n)]
            groups = [self.describe_group(n) for n in names]
        epoch = datetime.min.replace(tzinfo=UTC)
        return sorted(groups, key=lambda g: (g.created_at or epoch, g.name), reverse=True)

    def resize_group(
        self, name: str, *, min_size: int, max_size: int, desired_capacity: int
    ) -> None:
        _check_sizes(min_size, max_size, desired_capacity)
        with self.lock:
            group = self._group(name)
            if group["deleting"]:
                raise Conflict(f"group {name} is being deleted", field="group")
            group.update(min=min_size, max=max_size, desired=desired_capacity)
            self.save()

    def suspend_processes(self, name: str, processes_: Sequence[str]) -> None:
        self._set_processes(name, processes_, suspend=True)

    def resume_processes(self, name: str, processes_: Sequence[str]) -> None:
        self._set_processes(name, processes_, suspend=False)

    def _set_processes(self, name: str, names: Sequence[str], *, suspend: bool) -> None:
        unknown = set(names) - set(base.PROCESSES)
        if unknown:
            raise InvalidInput(f"unknown process {sorted(unknown)[0]}", field="processes")
        chosen = set(names) or set(base.PROCESSES)
        with self.lock:
            group = self._group(name)
            current = set(group["suspended"])
            group["suspended"] = sorted(current | chosen if suspend else current - chosen)
            self.save()

    def delete_group(self, name: str, *, force: bool = True) -> None:
        with self.lock:
            group = self.state.groups.get(name)
            if group is None:
                return
            members = [r for r in self.state.instances.values() if r["group"] == name]
            if members and not force:
                raise Conflict(f"group {name} still has instances", field="group")
            group.update(deleting=True, min=0, desired=0)
            self.save()

    def group_exists(self, name: str) -> bool:
        with self.lock:
            return name in self.state.groups

    def tag_group(self, name: str, tags: Mapping[str, str]) -> None:
        with self.lock:
            group = self._group(name)
            group["tags"] = {**group["tags"], **{k: str(v) for k, v in tags.items()}}
            self.save()

    # Instances (for the daemon's API) -----------------------------------------------------
    def instance_log(self, instance_id: str, tail: int = 200) -> str:
        return instances.read_log(self.layout, instance_id, tail)

    def instance_alive(self, rec: Mapping[str, Any]) -> bool:
        process = self.popen.get(rec["id"])
        if process is not None:
            return process.poll() is None
        return processes.alive(rec.get("pid"), rec.get("started"))

    # Network ------------------------------------------------------------------------------
    def subnets(self, purpose: str | None = None) -> list[base.Subnet]:
        return [base.Subnet(id="local", zone="local", vpc_id="local", purpose=purpose)]

    def security_group_ids(self, names: Sequence[str]) -> dict[str, str]:
        return {n: n for n in names}

    def vpc_of_subnet(self, subnet_id: str) -> str:
        if subnet_id != "local":
            raise NotFound(f"subnet {subnet_id} does not exist", field="subnet")
        return "local"


def _check_sizes(min_size: int, max_size: int, desired: int) -> None:
    if min_size < 0 or max_size < min_size:
        raise InvalidInput("need 0 <= min_size <= max_size", field="min_size")
    if not min_size <= desired <= max_size:
        raise InvalidInput("desired_capacity must be between min and max", field="desired_capacity")
