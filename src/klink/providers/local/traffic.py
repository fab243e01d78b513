"""Traffic by weight on the local cloud: members of an HAProxy backend and their weights.

A target group record gets ``weights`` (member → 0..100, the direct member under the target
group's own name) on the first ``attach_traffic``; until then every server has the same weight,
as before weights existed. A member's servers are targets keyed ``{instance}@{group}`` that
remember their group (``member``). ``set_traffic`` computes every server's weight
(``weights.server_weights``) and sends them in one runtime-API round trip (``set weight``, no
reload), then saves the state, so a restarted daemon or HAProxy comes back with the same
weights (the rendered config carries them). HAProxy keeps checking weight-0 servers, so
``traffic`` reports a warm member's health.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from klink.errors import Conflict, InvalidInput, NotFound
from klink.providers import base
from klink.providers.local import haproxy
from klink.providers.local.balancer import BalancerMixin
from klink.providers.local.weights import member_weights
from klink.providers.traffic import GroupTraffic, TrafficState, merge_weights


class TrafficMixin(BalancerMixin):
    def _weights_record(self, target_group: str) -> dict[str, int]:
        record = self.state.target_groups[target_group]
        if "weights" not in record:
            # The direct member carries traffic only if it has somewhere to send it.
            live = any(
                t.get("member") is None and not t["draining"] for t in record["targets"].values()
            )
            record["weights"] = {target_group: 100 if live else 0}
        weights: dict[str, int] = record["weights"]
        return weights

    def memberships(self, group: str) -> list[str]:
        """The target groups that ``group`` is a traffic member of."""
        return [
            name
            for name, record in self.state.target_groups.items()
            if name != group and group in record.get("weights", {})
        ]

    def forget_member(self, group: str) -> None:
        """A deleted group leaves every balancer (its servers have drained by then)."""
        for name in self.memberships(group):
            del self.state.target_groups[name]["weights"][group]

    def attach_traffic(self, target_group: str, group: str) -> None:
        with self.lock:
            self.describe_target_group(target_group)
            if group == target_group:
                raise InvalidInput(
                    f"a group cannot be named like its target group {target_group}", field="group"
                )
            raw = self.state.groups.get(group)
            if raw is None or raw["deleting"]:
                raise NotFound(f"group {group} does not exist", field="group")
            self._weights_record(target_group).setdefault(group, 0)
            for rec in self.state.instances.values():
                if rec["group"] == group and rec["state"] == base.IN_SERVICE and rec["pid"]:
                    self.register(target_group, rec["id"], member=group)
            self.save()

    def set_traffic(self, target_group: str, weights: Mapping[str, int]) -> None:
        with self.lock:
            self.describe_target_group(target_group)
            current = self._weights_record(target_group)
            merged = merge_weights(target_group, current, weights)
            if merged == current:
                return
            record = self.state.target_groups[target_group]
            record["weights"] = merged
            try:
                self.reweigh(target_group)
            except Exception:
                record["weights"] = current
                raise
            self.save()

    def traffic(self, target_group: str) -> TrafficState:
        with self.lock:
            self.describe_target_group(target_group)
            record = self.state.target_groups[target_group]
            weights = member_weights(target_group, record)
            running = record["targets"] and self.lb.running()
            stats = self.lb.server_stats(target_group) if running else {}
            by_member: dict[str, list[dict[str, Any]]] = {}
            for target in record["targets"].values():
                by_member.setdefault(target.get("member") or target_group, []).append(target)
        out = []
        for name in sorted(set(weights) | set(by_member)):
            targets = sorted(by_member.get(name, []), key=lambda t: int(t.get("slot", -1)))
            if name == target_group and not weights.get(name) and not targets:
                continue
            live = [t for t in targets if not t["draining"]]
            healthy = [
                t for t in live if haproxy.target_state(self._row(stats, t), False) == "healthy"
            ]
            out.append(
                GroupTraffic(
                    name=name,
                    weight=weights.get(name, 0),
                    registered=len(live),
                    healthy=len(healthy),
                    draining=len(targets) - len(live),
                    direct=name == target_group,
                    target=target_group,
                    servers=tuple(
                        haproxy.server_id(target_group, t["slot"]) for t in targets if "slot" in t
                    ),
                )
            )
        return TrafficState(target_group, tuple(out))

    def detach_traffic(self, target_group: str, group: str) -> None:
        if group == target_group:
            raise InvalidInput(
                "the direct member cannot be detached; deregister its instances", field="group"
            )
        with self.lock:
            self.describe_target_group(target_group)
            record = self.state.target_groups[target_group]
            weight = record.get("weights", {}).get(group, 0)
            if weight > 0:
                raise Conflict(
                    f"{group} still has weight {weight} on {target_group}; set it to 0 first",
                    field="weights",
                )
            record.get("weights", {}).pop(group, None)
            for key, target in list(record["targets"].items()):
                if target.get("member") == group:
                    self.drain(target_group, key)
            self.save()
