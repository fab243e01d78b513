"""FakeProvider's traffic capability: weights per group behind a balancer, in memory. A FAKE
(see ``fake_provider.py``).

It keeps the contract of ``Provider``'s traffic methods as the real providers do: members join
at weight 0 with the group's instances registered (and those it launches later unless
``AddToLoadBalancer`` is suspended), a shift is one call (recorded once in ``calls`` as
``set_traffic``), the direct member is named like the target group, has all the traffic
before weights take over and keeps 100 then if it has instances, 0 otherwise; bad weights are
refused by the same ``merge_weights`` check. An instance is healthy through the balancer once
``InService``, unless its image was made unhealthy.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from klink.errors import Conflict, InvalidInput, NotFound
from klink.providers.base import IN_SERVICE
from klink.providers.traffic import GroupTraffic, TrafficState, merge_weights


class FakeTraffic:
    state: dict[str, Any]
    _lock: threading.RLock

    def _changed(self, call: str, name: str) -> None:
        raise NotImplementedError

    def _wait(self) -> None:
        raise NotImplementedError

    def _balancer(self, target_group: str, *, create: bool = True) -> dict[str, Any]:
        """The balancer's record; before weights took over (``create`` False: a read), all
        traffic goes to the direct member."""
        if target_group not in self.state["target_groups"]:
            raise NotFound(f"target group {target_group} does not exist", field="target_group")
        balancers: dict[str, Any] = self.state.setdefault("traffic", {})
        if target_group not in balancers:
            if not create:
                return {"direct": 100, "members": {}}
            # Weights take over: the direct member keeps traffic only if it has instances.
            direct = 100 if self.state["registered"].get(target_group) else 0
            balancers[target_group] = {"direct": direct, "members": {}}
        balancer: dict[str, Any] = balancers[target_group]
        return balancer

    def _weights(self, target_group: str, balancer: Mapping[str, Any]) -> dict[str, int]:
        weights = {name: int(m["weight"]) for name, m in balancer["members"].items()}
        weights[target_group] = int(balancer["direct"])
        return weights

    def attach_traffic(self, target_group: str, group: str) -> None:
        self._wait()
        with self._lock:
            raw = self.state["groups"].get(group)
            if raw is None or raw["deleting"] is not None:
                raise NotFound(f"group {group} does not exist", field="group")
            balancer = self._balancer(target_group)
            member = balancer["members"].setdefault(group, {"weight": 0, "registered": []})
            missing = [i["id"] for i in raw["instances"] if i["id"] not in member["registered"]]
            member["registered"] += missing
            self._changed("attach_traffic", f"{target_group}/{group}")

    def registered_on_launch(self, group: str, instance_ids: list[str]) -> None:
        """New instances of ``group`` join every balancer it is a member of (as ASG does)."""
        raw = self.state["groups"][group]
        if "AddToLoadBalancer" in raw["suspended_processes"]:
            return
        for balancer in self.state.get("traffic", {}).values():
            member = balancer["members"].get(group)
            if member is not None:
                member["registered"] += [i for i in instance_ids if i not in member["registered"]]

    def set_traffic(self, target_group: str, weights: Mapping[str, int]) -> None:
        self._wait()
        with self._lock:
            balancer = self._balancer(target_group)
            current = self._weights(target_group, balancer)
            merged = merge_weights(target_group, current, weights)
            if merged == current:
                return
            for name, weight in merged.items():
                if name == target_group:
                    balancer["direct"] = weight
                else:
                    balancer["members"][name]["weight"] = weight
            self._changed("set_traffic", target_group)

    def _counts(self, ids: list[str], group: str | None) -> tuple[int, int, int]:
        """(registered, healthy, draining) of instance ids, from their groups' records."""
        unhealthy = set(self.state["unhealthy_images"])
        by_id: dict[str, tuple[dict[str, Any], bool]] = {}
        for raw in self.state["groups"].values():
            if group is None or raw["name"] == group:
                for instance in raw["instances"]:
                    by_id[instance["id"]] = (instance, raw["deleting"] is not None)
        registered = healthy = draining = 0
        for instance_id in ids:
            if instance_id not in by_id:
                continue
            instance, leaving = by_id[instance_id]
            if leaving:
                draining += 1
                continue
            registered += 1
            if instance["state"] == IN_SERVICE and instance["image_id"] not in unhealthy:
                healthy += 1
        return registered, healthy, draining

    def traffic(self, target_group: str) -> TrafficState:
        self._wait()
        with self._lock:
            balancer = self._balancer(target_group, create=False)
            out = []
            direct_ids = list(self.state["registered"].get(target_group, []))
            registered, healthy, draining = self._counts(direct_ids, None)
            if balancer["direct"] or direct_ids:
                out.append(
                    GroupTraffic(
                        name=target_group,
                        weight=int(balancer["direct"]),
                        registered=registered,
                        healthy=healthy,
                        draining=draining,
                        direct=True,
                        target=target_group,
                    )
                )
            for name, member in balancer["members"].items():
                registered, healthy, draining = self._counts(list(member["registered"]), name)
                out.append(
                    GroupTraffic(
                        name=name,
                        weight=int(member["weight"]),
                        registered=registered,
                        healthy=healthy,
                        draining=draining,
                        target=target_group,
                    )
                )
            return TrafficState(target_group, tuple(sorted(out, key=lambda g: g.name)))

    def serving(self, target_group: str) -> set[str]:
        """The instance ids that get requests: those of every member with a weight above 0
        (the direct member's before weights took over). For tests' assertions."""
        with self._lock:
            balancer = self._balancer(target_group, create=False)
            ids: set[str] = set()
            if balancer["direct"]:
                ids |= set(self.state["registered"].get(target_group, []))
            for member in balancer["members"].values():
                if member["weight"] > 0:
                    ids |= set(member["registered"])
            return ids

    def detach_traffic(self, target_group: str, group: str) -> None:
        self._wait()
        with self._lock:
            if group == target_group:
                raise InvalidInput(
                    "the direct member cannot be detached; deregister its instances",
                    field="group",
                )
            balancer = self._balancer(target_group, create=False)
            member = balancer["members"].get(group)
            if member is None:
                return
            if member["weight"] > 0:
                raise Conflict(
                    f"{group} still has weight {member['weight']} on {target_group}; "
                    "set it to 0 first",
                    field="weights",
                )
            del balancer["members"][group]
            self._changed("detach_traffic", f"{target_group}/{group}")
