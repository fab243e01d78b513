"""FakeProvider's scaling policies, alarms, scheduled actions, notifications and network. A FAKE
(see ``fake_provider.py``)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from klink.providers.base import (
    Alarm,
    NotificationConfig,
    ScalingPolicy,
    ScheduledAction,
    Subnet,
)


class FakeScalingAndNetwork:
    state: dict[str, Any]
    _lock: threading.RLock

    def _changed(self, call: str, name: str) -> None:
        raise NotImplementedError

    # Policies, alarms, scheduled actions, notifications ----------------------------------
    def _items(self, kind: str, group: str) -> dict[str, Any]:
        items: dict[str, Any] = self.state[kind].setdefault(group, {})
        return items

    def put_scaling_policy(self, policy: ScalingPolicy) -> ScalingPolicy:
        with self._lock:
            self._items("policies", policy.group)[policy.name] = asdict(policy)
            self._changed("put_scaling_policy", policy.name)
            return policy

    def list_scaling_policies(self, group: str) -> list[ScalingPolicy]:
        with self._lock:
            return [ScalingPolicy(**p) for p in self._items("policies", group).values()]

    def delete_scaling_policy(self, group: str, name: str) -> None:
        with self._lock:
            self._items("policies", group).pop(name, None)
            self._changed("delete_scaling_policy", name)

    def put_alarm(self, alarm: Alarm) -> None:
        with self._lock:
            raw = asdict(alarm)
            raw["policies"] = list(alarm.policies)
            self._items("alarms", alarm.group)[alarm.name] = raw
            self._changed("put_alarm", alarm.name)

    def list_alarms(self, group: str) -> list[Alarm]:
        with self._lock:
            return [
                Alarm(**{**a, "policies": tuple(a["policies"])})
                for a in self._items("alarms", group).values()
            ]

    def delete_alarms(self, group: str, names: Sequence[str]) -> None:
        with self._lock:
            for name in names:
                self._items("alarms", group).pop(name, None)
            self._changed("delete_alarms", group)

    def put_scheduled_action(self, action: ScheduledAction) -> None:
        with self._lock:
            raw = asdict(action)
            raw["start_time"] = action.start_time.isoformat() if action.start_time else None
            self._items("scheduled", action.group)[action.name] = raw
            self._changed("put_scheduled_action", action.name)

    def list_scheduled_actions(self, group: str) -> list[ScheduledAction]:
        with self._lock:
            out = []
            for raw in self._items("scheduled", group).values():
                start = raw["start_time"]
                out.append(
                    ScheduledAction(
                        **{**raw, "start_time": datetime.fromisoformat(start) if start else None}
                    )
                )
            return out

    def delete_scheduled_action(self, group: str, name: str) -> None:
        with self._lock:
            self._items("scheduled", group).pop(name, None)
            self._changed("delete_scheduled_action", name)

    def put_notification(self, config: NotificationConfig) -> None:
        with self._lock:
            raw = {"group": config.group, "topic": config.topic, "types": list(config.types)}
            self._items("notifications", config.group)[config.topic] = raw
            self._changed("put_notification", config.topic)

    def list_notifications(self, group: str) -> list[NotificationConfig]:
        with self._lock:
            return [
                NotificationConfig(n["group"], n["topic"], tuple(n["types"]))
                for n in self._items("notifications", group).values()
            ]

    def delete_notification(self, group: str, topic: str) -> None:
        with self._lock:
            self._items("notifications", group).pop(topic, None)
            self._changed("delete_notification", topic)

    # Network --------------------------------------------------------------------------
    def subnets(self, purpose: str | None = None) -> list[Subnet]:
        all_subnets = [
            Subnet("subnet-a", "zone-a", "vpc-1", "internal"),
            Subnet("subnet-b", "zone-b", "vpc-1", "internal"),
            Subnet("subnet-c", "zone-a", "vpc-1", "external"),
        ]
        return [s for s in all_subnets if purpose is None or s.purpose == purpose]

    def security_group_ids(self, names: Sequence[str]) -> dict[str, str]:
        return {name: f"sg-{name}" for name in names}

    def vpc_of_subnet(self, subnet_id: str) -> str:
        return "vpc-1"
