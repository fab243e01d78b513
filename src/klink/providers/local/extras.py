"""Scaling policies, alarms, scheduled actions and notifications of the local cloud.

They are kept in the daemon's state and behave like AWS for create/list/delete (put replaces
by name, delete is idempotent); the local cloud does not act on them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from klink.errors import NotFound
from klink.providers import base
from klink.providers.local.state import State


class ExtrasMixin:
    state: State
    lock: threading.RLock

    def save(self) -> None:
        raise NotImplementedError

    def _put(self, table: dict[str, dict[str, Any]], group: str, key: str, value: Any) -> None:
        with self.lock:
            if group not in self.state.groups:
                raise NotFound(f"group {group} does not exist", field="group")
            table.setdefault(group, {})[key] = value
            self.save()

    def _list(self, table: dict[str, dict[str, Any]], group: str) -> list[Any]:
        with self.lock:
            return [v for _, v in sorted(table.get(group, {}).items())]

    def _delete(self, table: dict[str, dict[str, Any]], group: str, keys: Sequence[str]) -> None:
        with self.lock:
            entries = table.get(group, {})
            removed = [k for k in keys if entries.pop(k, None) is not None]
            if removed:
                self.save()

    def put_scaling_policy(self, policy: base.ScalingPolicy) -> base.ScalingPolicy:
        from dataclasses import replace

        stored = replace(policy, id=policy.id or f"policy/{policy.group}/{policy.name}")
        self._put(self.state.policies, policy.group, policy.name, stored)
        return stored

    def list_scaling_policies(self, group: str) -> list[base.ScalingPolicy]:
        return self._list(self.state.policies, group)

    def delete_scaling_policy(self, group: str, name: str) -> None:
        self._delete(self.state.policies, group, [name])

    def put_alarm(self, alarm: base.Alarm) -> None:
        self._put(self.state.alarms, alarm.group, alarm.name, alarm)

    def list_alarms(self, group: str) -> list[base.Alarm]:
        return self._list(self.state.alarms, group)

    def delete_alarms(self, group: str, names: Sequence[str]) -> None:
        self._delete(self.state.alarms, group, names)

    def put_scheduled_action(self, action: base.ScheduledAction) -> None:
        self._put(self.state.scheduled, action.group, action.name, action)

    def list_scheduled_actions(self, group: str) -> list[base.ScheduledAction]:
        return self._list(self.state.scheduled, group)

    def delete_scheduled_action(self, group: str, name: str) -> None:
        self._delete(self.state.scheduled, group, [name])

    def put_notification(self, config: base.NotificationConfig) -> None:
        self._put(self.state.notifications, config.group, config.topic, config)

    def list_notifications(self, group: str) -> list[base.NotificationConfig]:
        return self._list(self.state.notifications, group)

    def delete_notification(self, group: str, topic: str) -> None:
        self._delete(self.state.notifications, group, [topic])
