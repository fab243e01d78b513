"""Target groups of the local cloud, on HAProxy: create/update, register, drain, health.

Registration is drain-aware: ``deregister_instances`` only marks a target draining (HAProxy
sends it no new requests); the reconciler deletes it from HAProxy once its sessions have
finished or the target group's deregistration delay has passed. A target group with a new
frontend is the only change that reloads HAProxy; registration uses the runtime API.

Targets are keyed by instance id for direct registrations and by ``{instance}@{group}`` for
the servers of a traffic member (``traffic.py``), so an instance can be both, as on AWS where
a member has its own target group; ``target_health`` reports the direct ones only. Every
server's weight comes from ``traffic.server_weights`` (its member's weight shared among the
member's servers).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from klink.errors import Conflict, InvalidInput, NotFound
from klink.providers import base
from klink.providers.local import haproxy
from klink.providers.local.state import State
from klink.providers.local.weights import server_weights

# HAProxy server slots per backend to begin with (a red-black swap of 16 needs 32).
DEFAULT_SLOTS = 32


class BalancerMixin:
    state: State
    lock: threading.RLock
    lb: haproxy.HAProxy
    clock: Callable[[], float]

    def save(self) -> None:
        raise NotImplementedError

    def backends(self) -> list[haproxy.Backend]:
        return [self._backend(name) for name in self.state.target_groups]

    def _backend(self, name: str) -> haproxy.Backend:
        record = self.state.target_groups[name]
        tg: base.TargetGroup = record["tg"]
        weights = server_weights(name, record)
        return haproxy.Backend(
            name=tg.name,
            frontend_port=tg.frontend_port or 0,
            port=tg.port,
            health_path=tg.health_check_path,
            interval_ms=max(100, tg.health_check_interval_seconds * 1000),
            rise=tg.healthy_threshold,
            fall=tg.unhealthy_threshold,
            servers={
                key: haproxy.Server(
                    address=self.state.instances[_instance(key, t)]["ip"],
                    draining=bool(t["draining"]),
                    slot=self._slot(record, key),
                    weight=weights.get(key, 0),
                    group=t.get("member"),
                    instance=_instance(key, t),
                )
                for key, t in record["targets"].items()
                if _instance(key, t) in self.state.instances
            },
            slots=record.setdefault("slots", DEFAULT_SLOTS),
        )

    @staticmethod
    def _slot(record: dict[str, Any], key: str) -> int:
        """The HAProxy server slot of a target, given the lowest free one when it has none."""
        target = record["targets"][key]
        if "slot" not in target:
            used = {t["slot"] for t in record["targets"].values() if "slot" in t}
            target["slot"] = next(i for i in range(len(used) + 1) if i not in used)
        slot: int = target["slot"]
        return slot

    def _row(self, stats: dict[str, dict[str, str]], target: dict[str, Any]) -> Any:
        return stats.get(haproxy.slot_name(target["slot"])) if "slot" in target else None

    def ensure_target_group(self, spec: base.TargetGroupSpec) -> base.TargetGroup:
        if spec.frontend_port is None or not 0 < spec.frontend_port < 65536:
            raise InvalidInput("a local target group needs a frontend_port", field="frontend_port")
        if not spec.health_check_path.startswith("/"):
            raise InvalidInput("health_check_path must start with /", field="health_check_path")
        with self.lock:
            for other in self.state.target_groups.values():
                other_tg: base.TargetGroup = other["tg"]
                if other_tg.name != spec.name and other_tg.frontend_port == spec.frontend_port:
                    raise Conflict(
                        f"frontend port {spec.frontend_port} is used by {other_tg.name}",
                        field="frontend_port",
                    )
            existing = self.state.target_groups.get(spec.name)
            if existing is not None:
                # As on ELBv2: the servers point at the old port (HAProxy's saved server state
                # keeps it across reloads) while the target group would say the new one.
                old: base.TargetGroup = existing["tg"]
                changed = [
                    key
                    for key, value in (("port", spec.port), ("protocol", spec.protocol))
                    if getattr(old, key) != value
                ]
                if changed:
                    raise Conflict(
                        f"target group {spec.name} exists with another {', '.join(changed)}; "
                        "those cannot change in place (delete it or use a new name)",
                        field=changed[0],
                    )
            tg = base.TargetGroup(
                name=spec.name,
                id=spec.name,
                port=spec.port,
                protocol=spec.protocol,
                health_check_path=spec.health_check_path,
                health_check_interval_seconds=spec.health_check_interval_seconds,
                healthy_threshold=spec.healthy_threshold,
                unhealthy_threshold=spec.unhealthy_threshold,
                deregistration_delay_seconds=spec.deregistration_delay_seconds,
                vpc_id="local",
                frontend_port=spec.frontend_port,
                tags=dict(spec.tags),
            )
            record = self.state.target_groups.setdefault(spec.name, {"targets": {}})
            record["tg"] = tg
            self.lb.apply(self.backends())
            self.save()
            return tg

    def describe_target_group(self, name: str) -> base.TargetGroup:
        with self.lock:
            record = self.state.target_groups.get(name)
        if record is None:
            raise NotFound(f"target group {name} does not exist", field="target_group")
        tg: base.TargetGroup = record["tg"]
        return tg

    def list_target_groups(self) -> list[base.TargetGroup]:
        with self.lock:
            return [r["tg"] for _, r in sorted(self.state.target_groups.items())]

    def delete_target_group(self, name: str) -> None:
        with self.lock:
            if self.state.target_groups.pop(name, None) is None:
                return
            self.lb.apply(self.backends())
            self.save()

    def register_instances(self, target_group: str, instance_ids: Sequence[str]) -> None:
        with self.lock:
            self.describe_target_group(target_group)
            for iid in instance_ids:
                if iid not in self.state.instances:
                    raise InvalidInput(f"instance {iid} does not exist", field="instance_ids")
            for iid in instance_ids:
                self.register(target_group, iid)
            self.save()

    def register(self, target_group: str, instance_id: str, member: str | None = None) -> None:
        """Register one instance, directly or as a server of traffic member ``member``."""
        record = self.state.target_groups[target_group]
        key = instance_id if member is None else f"{instance_id}@{member}"
        target: dict[str, Any] | None = record["targets"].get(key)
        if target is not None and not target["draining"]:
            return
        if target is None:
            target = {"draining": False, "since": self.clock()}
            record["targets"][key] = target
            if member is not None:
                target.update(instance=instance_id, member=member)
        target.update(draining=False, since=self.clock())
        slot = self._slot(record, key)
        if slot >= record.setdefault("slots", DEFAULT_SLOTS):
            # Out of slots: twice as many, through one graceful reload (servers keep state).
            record["slots"] = max(record["slots"] * 2, slot + 1)
            self.lb.apply(self.backends())
        ip = self.state.instances[instance_id]["ip"]
        weights = server_weights(target_group, record)
        self.lb.add_server(self._backend(target_group), slot, ip, weights.get(key, 0))
        self.reweigh(target_group, weights)

    def reweigh(self, target_group: str, weights: dict[str, int] | None = None) -> None:
        """Send every live server of the backend its weight, in one round trip."""
        record = self.state.target_groups[target_group]
        weights = server_weights(target_group, record) if weights is None else weights
        slots = {record["targets"][k]["slot"]: w for k, w in weights.items()}
        if slots and self.lb.running():
            self.lb.set_weights(target_group, slots)

    def deregister_instances(self, target_group: str, instance_ids: Sequence[str]) -> None:
        with self.lock:
            self.describe_target_group(target_group)
            for iid in instance_ids:
                self.drain(target_group, iid)
            self.save()

    def drain(self, target_group: str, key: str) -> None:
        record = self.state.target_groups[target_group]
        target = record["targets"].get(key)
        if target is None or target["draining"]:
            return
        self.lb.drain_server(target_group, self._slot(record, key))
        target.update(draining=True, since=self.clock())
        # The member's other servers share its weight now.
        self.reweigh(target_group)

    def finish_drains(self) -> None:
        """Delete drained targets: no sessions left, or the deregistration delay has passed."""
        now = self.clock()
        for name, record in self.state.target_groups.items():
            draining = {k: t for k, t in record["targets"].items() if t["draining"]}
            if not draining:
                continue
            stats = self.lb.server_stats(name) if self.lb.running() else {}
            delay = record["tg"].deregistration_delay_seconds
            for key, target in draining.items():
                row = self._row(stats, target)
                idle = row is None or int(row.get("scur") or 0) == 0
                if idle or now - target["since"] >= delay:
                    if row is not None:
                        self.lb.delete_server(name, target["slot"])
                    del record["targets"][key]
                    self.save()

    def target_health(self, target_group: str) -> list[base.TargetHealth]:
        with self.lock:
            tg = self.describe_target_group(target_group)
            targets = {
                k: t
                for k, t in self.state.target_groups[target_group]["targets"].items()
                if t.get("member") is None
            }
            stats = self.lb.server_stats(target_group) if targets and self.lb.running() else {}
        return [
            base.TargetHealth(
                instance_id=iid,
                state=haproxy.target_state(self._row(stats, t), bool(t["draining"])),
                port=tg.port,
            )
            for iid, t in sorted(targets.items())
        ]

    def forget_instance(self, instance_id: str) -> None:
        """Remove a gone instance from every target group at once (nothing left to drain)."""
        for name, record in self.state.target_groups.items():
            keys = [k for k, t in record["targets"].items() if _instance(k, t) == instance_id]
            for key in keys:
                target = record["targets"].pop(key)
                if "slot" in target and self.lb.running():
                    self.lb.delete_server(name, target["slot"])
            if keys:
                self.reweigh(name)

    def targets_of(self, instance_id: str) -> list[tuple[str, str]]:
        """(target group, target key) of every registration of the instance."""
        return [
            (name, key)
            for name, record in self.state.target_groups.items()
            for key, t in record["targets"].items()
            if _instance(key, t) == instance_id
        ]


def _instance(key: str, target: dict[str, Any]) -> str:
    instance: str = target.get("instance", key)
    return instance
