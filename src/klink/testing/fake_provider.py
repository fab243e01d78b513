"""FakeProvider: an in-memory, zero-latency implementation of ``providers/base.py``. A FAKE.

It exists for plan and engine tests and the engine benchmark, where what is measured is the
orchestrator itself, not a cloud. It keeps the interface's contracts (idempotent creates,
NotFound on missing things, suspended processes honoured, deletion that takes a poll to finish)
and records every mutating call in ``calls`` (traffic by weight: ``fake_traffic.py``). With
``state_path`` it saves its whole state as JSON after every change, so a test can kill a real
engine process and inspect what it left.
Instances start ``Pending`` and are ``InService`` after ``pending_polls`` group reads; images
listed in ``unhealthy_images`` launch instances that never become healthy. Metric series
(``metric_data``) are what tests put with ``put_metric`` (``fake_metrics``). With
``boot_seconds`` an instance also stays ``Pending`` that long after its launch, as on a cloud.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from klink.errors import NotFound
from klink.providers.base import (
    IN_SERVICE,
    PENDING,
    BlockDevice,
    Group,
    GroupSpec,
    Image,
    Instance,
    LaunchTemplate,
    LaunchTemplateSpec,
    Provider,
    TargetGroup,
    TargetGroupSpec,
    TargetHealth,
)
from klink.testing.fake_metrics import FakeMetrics
from klink.testing.fake_scaling import FakeScalingAndNetwork
from klink.testing.fake_traffic import FakeTraffic

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class FakeProvider(FakeMetrics, FakeScalingAndNetwork, FakeTraffic, Provider):
    name = "fake"
    http_probes: ClassVar[bool] = False

    def __init__(
        self,
        *,
        state_path: Path | None = None,
        latency: float = 0.0,
        pending_polls: int = 1,
        delete_polls: int = 1,
        boot_seconds: float = 0.0,
    ) -> None:
        self.boot_seconds = boot_seconds
        self.state_path = state_path
        self.latency = latency
        self.pending_polls = pending_polls
        self.delete_polls = delete_polls
        self._lock = threading.RLock()
        self.calls: list[tuple[str, str]] = []
        self.state: dict[str, Any] = {
            "images": {},
            "templates": {},
            "groups": {},
            "target_groups": {},
            "registered": {},
            "traffic": {},
            "policies": {},
            "alarms": {},
            "scheduled": {},
            "notifications": {},
            "unhealthy_images": [],
            "counter": 0,
            "calls": [],
        }
        if state_path is not None and state_path.exists():
            self.state = json.loads(state_path.read_text())
            self.calls = [(str(c[0]), str(c[1])) for c in self.state.get("calls", [])]

    @classmethod
    def from_environment(cls, env: str, metadata: Mapping[str, Any], settings: Any) -> Provider:
        path = metadata.get("fakeStatePath")
        return cls(
            state_path=Path(path) if path else None,
            latency=float(metadata.get("fakeLatency", 0.0)),
        )

    # Bookkeeping ----------------------------------------------------------------------
    def _tick(self) -> int:
        self.state["counter"] += 1
        return int(self.state["counter"])

    def _now(self) -> str:
        return (_EPOCH.replace(microsecond=0)).isoformat() + f"#{self._tick():08d}"

    def _changed(self, call: str, name: str) -> None:
        self.calls.append((call, name))
        if self.state_path is not None:
            self.state["calls"] = [list(c) for c in self.calls]
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state))
            tmp.replace(self.state_path)

    def _wait(self) -> None:
        if self.latency:
            time.sleep(self.latency)

    # Test set-up helpers (not part of the interface) ------------------------------------
    def add_image(
        self,
        image_id: str,
        app: str,
        version: str = "1.0",
        *,
        embargo: str = "",
        state: str = "available",
    ) -> None:
        with self._lock:
            tags = {"klink:app": app, "klink:version": version}
            if embargo:
                tags["klink:embargo"] = embargo
            self.state["images"][image_id] = {
                "id": image_id,
                "name": f"{app}-{version}",
                "state": state,
                "tags": tags,
                "order": self._tick(),
            }
            self._changed("add_image", image_id)

    def make_unhealthy(self, image_id: str) -> None:
        with self._lock:
            self.state["unhealthy_images"].append(image_id)
            self._changed("make_unhealthy", image_id)

    def count(self, call: str) -> int:
        return sum(1 for c, _ in self.calls if c == call)

    # Images -------------------------------------------------------------------------
    def _image(self, raw: Mapping[str, Any]) -> Image:
        return Image(raw["id"], raw["name"], raw["state"], None, dict(raw["tags"]))

    def describe_image(self, image_id: str) -> Image:
        self._wait()
        with self._lock:
            raw = self.state["images"].get(image_id)
            if raw is None:
                raise NotFound(f"image {image_id} does not exist")
            return self._image(raw)

    def list_images(self, app: str | None = None) -> list[Image]:
        with self._lock:
            raws = sorted(self.state["images"].values(), key=lambda r: -r["order"])
            return [
                self._image(r) for r in raws if app is None or r["tags"].get("klink:app") == app
            ]

    def tag_image(self, image_id: str, tags: Mapping[str, str]) -> None:
        with self._lock:
            self.state["images"][image_id]["tags"].update(tags)
            self._changed("tag_image", image_id)

    def deregister_image(self, image_id: str) -> None:
        with self._lock:
            self.state["images"].pop(image_id, None)
            self._changed("deregister_image", image_id)

    # Launch templates ---------------------------------------------------------------
    def create_launch_template(self, spec: LaunchTemplateSpec) -> LaunchTemplate:
        self._wait()
        with self._lock:
            if spec.name not in self.state["templates"]:
                raw = asdict(spec)
                raw["tags"] = dict(spec.tags)
                raw["id"] = f"lt-{self._tick():08d}"
                self.state["templates"][spec.name] = raw
                self._changed("create_launch_template", spec.name)
            return self.describe_launch_template(spec.name)

    def describe_launch_template(self, name: str) -> LaunchTemplate:
        with self._lock:
            raw = self.state["templates"].get(name)
            if raw is None:
                raise NotFound(f"launch template {name} does not exist")
            return LaunchTemplate(
                id=raw["id"],
                name=raw["name"],
                image_id=raw["image_id"],
                instance_type=raw["instance_type"],
                user_data=raw["user_data"],
                security_group_ids=tuple(raw["security_group_ids"]),
                instance_profile=raw["instance_profile"],
                key_name=raw["key_name"],
                block_devices=tuple(BlockDevice(**b) for b in raw["block_devices"]),
                tags=dict(raw["tags"]),
            )

    def delete_launch_template(self, name: str) -> None:
        self._wait()
        with self._lock:
            if self.state["templates"].pop(name, None) is not None:
                self._changed("delete_launch_template", name)

    # Groups -------------------------------------------------------------------------
    def create_group(self, spec: GroupSpec) -> Group:
        self._wait()
        with self._lock:
            if spec.launch_template not in self.state["templates"]:
                raise NotFound(f"launch template {spec.launch_template} does not exist")
            if spec.name not in self.state["groups"]:
                raw = asdict(spec)
                raw.update(
                    tags=dict(spec.tags),
                    suspended_processes=sorted(spec.suspended_processes),
                    order=self._tick(),
                    instances=[],
                    deleting=None,
                )
                self.state["groups"][spec.name] = raw
                self._changed("create_group", spec.name)
            return self._group(self.state["groups"][spec.name])

    def _launch(self, raw: dict[str, Any]) -> None:
        alive = list(raw["instances"])
        template = self.state["templates"].get(raw["launch_template"], {})
        while len(alive) < raw["desired_capacity"]:
            number = self._tick()
            alive.append(
                {
                    "id": f"i-{number:08x}",
                    "state": PENDING,
                    "polls": 0,
                    "launched": time.time(),
                    "ip": f"127.77.{number // 250 % 250}.{number % 250 + 1}",
                    "image_id": template.get("image_id"),
                }
            )
        del alive[raw["desired_capacity"] :]
        before = {i["id"] for i in raw["instances"]}
        raw["instances"] = alive
        self.registered_on_launch(raw["name"], [i["id"] for i in alive if i["id"] not in before])

    def _group(self, raw: dict[str, Any]) -> Group:
        unhealthy = set(self.state["unhealthy_images"])
        instances = tuple(
            Instance(
                id=i["id"],
                lifecycle_state=i["state"],
                health="Unhealthy" if i["image_id"] in unhealthy else "Healthy",
                private_ip=i["ip"],
                image_id=i["image_id"],
                group=raw["name"],
            )
            for i in raw["instances"]
        )
        return Group(
            name=raw["name"],
            launch_template=raw["launch_template"],
            min_size=raw["min_size"],
            max_size=raw["max_size"],
            desired_capacity=raw["desired_capacity"],
            created_at=None,
            default_cooldown=raw["default_cooldown"],
            health_check_type=raw["health_check_type"],
            health_check_grace_period=raw["health_check_grace_period"],
            subnets=tuple(raw["subnets"]),
            termination_policies=tuple(raw["termination_policies"]),
            target_groups=tuple(raw["target_groups"]),
            suspended_processes=frozenset(raw["suspended_processes"]),
            tags=dict(raw["tags"]),
            instances=instances,
            status="Delete in progress" if raw["deleting"] is not None else None,
        )

    def _poll(self, raw: dict[str, Any]) -> None:
        changed = False
        for instance in raw["instances"]:
            if instance["state"] == PENDING:
                instance["polls"] += 1
                booted = time.time() - instance.get("launched", 0.0) >= self.boot_seconds
                if instance["polls"] >= self.pending_polls and booted:
                    instance["state"] = IN_SERVICE
                changed = True
        if changed:
            self._changed("poll", raw["name"])

    def describe_group(self, name: str) -> Group:
        self._wait()
        with self._lock:
            raw = self.state["groups"].get(name)
            if raw is None or self._deletion_done(raw):
                raise NotFound(f"group {name} does not exist")
            self._poll(raw)
            return self._group(raw)

    def list_groups(self, pattern: str | None = None) -> list[Group]:
        import re

        self._wait()
        with self._lock:
            raws = sorted(self.state["groups"].values(), key=lambda r: -r["order"])
            return [
                self._group(r) for r in raws if pattern is None or re.fullmatch(pattern, r["name"])
            ]

    def resize_group(
        self, name: str, *, min_size: int, max_size: int, desired_capacity: int
    ) -> None:
        self._wait()
        with self._lock:
            raw = self.state["groups"].get(name)
            if raw is None:
                raise NotFound(f"group {name} does not exist")
            raw.update(min_size=min_size, max_size=max_size, desired_capacity=desired_capacity)
            if "Launch" not in raw["suspended_processes"]:
                self._launch(raw)
            self._changed("resize_group", name)

    def suspend_processes(self, name: str, processes: Sequence[str]) -> None:
        with self._lock:
            raw = self.state["groups"][name]
            raw["suspended_processes"] = sorted(set(raw["suspended_processes"]) | set(processes))
            self._changed("suspend_processes", name)

    def resume_processes(self, name: str, processes: Sequence[str]) -> None:
        with self._lock:
            raw = self.state["groups"][name]
            raw["suspended_processes"] = sorted(set(raw["suspended_processes"]) - set(processes))
            self._changed("resume_processes", name)

    def delete_group(self, name: str, *, force: bool = True) -> None:
        self._wait()
        with self._lock:
            raw = self.state["groups"].get(name)
            if raw is not None and raw["deleting"] is None:
                raw["deleting"] = 0
                for registered in self.state["registered"].values():
                    for instance in raw["instances"]:
                        if instance["id"] in registered:
                            registered.remove(instance["id"])
                self._changed("delete_group", name)

    def _deletion_done(self, raw: dict[str, Any]) -> bool:
        """One more look at a group being deleted; True (and forgotten) once it is gone."""
        if raw["deleting"] is None:
            return False
        raw["deleting"] += 1
        if raw["deleting"] <= self.delete_polls:
            return False
        name = raw["name"]
        del self.state["groups"][name]
        for kind in ("policies", "alarms", "scheduled", "notifications"):
            self.state[kind].pop(name, None)
        self._changed("group_gone", name)
        return True

    def group_exists(self, name: str) -> bool:
        self._wait()
        with self._lock:
            raw = self.state["groups"].get(name)
            return raw is not None and not self._deletion_done(raw)

    def tag_group(self, name: str, tags: Mapping[str, str]) -> None:
        with self._lock:
            self.state["groups"][name]["tags"].update(tags)
            self._changed("tag_group", name)

    # Target groups ------------------------------------------------------------------
    def ensure_target_group(self, spec: TargetGroupSpec) -> TargetGroup:
        with self._lock:
            raw = asdict(spec)
            raw["tags"] = dict(spec.tags)
            self.state["target_groups"][spec.name] = raw
            self.state["registered"].setdefault(spec.name, [])
            self._changed("ensure_target_group", spec.name)
            return self.describe_target_group(spec.name)

    def describe_target_group(self, name: str) -> TargetGroup:
        with self._lock:
            raw = self.state["target_groups"].get(name)
            if raw is None:
                raise NotFound(f"target group {name} does not exist")
            return TargetGroup(
                name=name,
                id=name,
                port=raw["port"],
                protocol=raw["protocol"],
                health_check_path=raw["health_check_path"],
                frontend_port=raw["frontend_port"],
            )

    def list_target_groups(self) -> list[TargetGroup]:
        with self._lock:
            return [self.describe_target_group(n) for n in sorted(self.state["target_groups"])]

    def delete_target_group(self, name: str) -> None:
        with self._lock:
            self.state["target_groups"].pop(name, None)
            self.state["registered"].pop(name, None)
            self.state.setdefault("traffic", {}).pop(name, None)
            self._changed("delete_target_group", name)

    def register_instances(self, target_group: str, instance_ids: Sequence[str]) -> None:
        self._wait()
        with self._lock:
            registered = self.state["registered"].setdefault(target_group, [])
            for instance_id in instance_ids:
                if instance_id not in registered:
                    registered.append(instance_id)
            self._changed("register_instances", target_group)

    def deregister_instances(self, target_group: str, instance_ids: Sequence[str]) -> None:
        self._wait()
        with self._lock:
            registered = self.state["registered"].setdefault(target_group, [])
            self.state["registered"][target_group] = [
                i for i in registered if i not in instance_ids
            ]
            self._changed("deregister_instances", target_group)

    def target_health(self, target_group: str) -> list[TargetHealth]:
        self._wait()
        with self._lock:
            health: dict[str, str] = {}
            for group in self.state["groups"].values():
                for instance in group["instances"]:
                    bad = instance["image_id"] in self.state["unhealthy_images"]
                    health[instance["id"]] = "unhealthy" if bad else "healthy"
            return [
                TargetHealth(instance_id=i, state=health.get(i, "unavailable"))
                for i in self.state["registered"].get(target_group, [])
            ]
