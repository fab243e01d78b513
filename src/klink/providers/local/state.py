"""The daemon's state: one JSON document in ``KLINK_HOME/local/state.json``.

Written atomically (new file + rename) after every change, so a restarted daemon finds its
launch templates, groups, instances (with pid + start time), target groups and registrations,
scaling policies, alarms, scheduled actions and notifications as they were.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from klink.errors import ProviderError
from klink.providers.local import codec
from klink.providers.local.addresses import AddressBlock


@dataclass
class State:
    templates: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    target_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)
    scheduled: dict[str, dict[str, Any]] = field(default_factory=dict)
    notifications: dict[str, dict[str, Any]] = field(default_factory=dict)

    _FIELDS = (
        "templates",
        "groups",
        "instances",
        "target_groups",
        "policies",
        "alarms",
        "scheduled",
        "notifications",
    )

    def save(self, path: Path) -> None:
        data = {name: codec.encode(getattr(self, name)) for name in self._FIELDS}
        temp = path.with_name(f".{path.name}.new")
        temp.write_text(json.dumps(data, sort_keys=True))
        os.replace(temp, path)

    @classmethod
    def load(cls, path: Path) -> State:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except ValueError as exc:
            raise ProviderError(f"local cloud state {path} is unreadable: {exc}") from None
        return cls(**{name: codec.decode(raw.get(name, {})) for name in cls._FIELDS})

    def addresses(self) -> set[str]:
        return {str(rec["ip"]) for rec in self.instances.values() if rec.get("ip")}

    def allocate_address(self, block: AddressBlock) -> str:
        """A free address of this cloud's own block (see ``addresses.py``)."""
        return block.allocate(self.addresses())
