"""What an action sees: the deployment (mutable, persisted after the action) and the services.

``Services`` holds every collaborator an action may call (metadata, config, the provider of an
environment, the notifier, the HTTP probe, the clock), injected so that the engine, the dry run
and the tests run the same actions against whatever is real in their setting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from klink.deploy.model import Deployment, GroupState, Step
from klink.deploy.params import DeployParams, read_params
from klink.providers.base import Provider


class MetadataSource(Protocol):
    def application(self, name: str) -> dict[str, Any]: ...

    def environment(self, name: str) -> dict[str, Any]: ...


class ConfigSource(Protocol):
    def file(self, app: str, env: str, name: str, at: str) -> tuple[str, Any]:
        """``(resolved 40-hex commit, parsed JSON)`` of ``name`` at ``at``."""
        ...


class Notifier(Protocol):
    def send(self, rooms: list[str], message: str, event: Mapping[str, Any]) -> list[str]:
        """Send to every room; return the problems (never raise)."""
        ...


@dataclass
class Services:
    metadata: MetadataSource
    config: ConfigSource
    provider_for: Callable[[str, Mapping[str, Any]], Provider]
    notifier: Notifier
    probe: Callable[[str], bool]
    clock: Callable[[], datetime]


@dataclass
class Context:
    deployment: Deployment
    services: Services
    step: Step
    attempt: int = 1
    logs: list[str] = field(default_factory=list)

    @property
    def facts(self) -> dict[str, Any]:
        return self.deployment.facts

    def log(self, message: str) -> None:
        self.logs.append(message)

    def now(self) -> datetime:
        return self.services.clock()

    def provider(self) -> Provider:
        return self.services.provider_for(self.deployment.env, self.facts.get("environment", {}))

    def params(self) -> DeployParams:
        return read_params(self.facts.get("params") or {})

    @property
    def previous(self) -> GroupState | None:
        return GroupState.from_json(self.deployment.previous_state)

    @property
    def new(self) -> GroupState | None:
        return GroupState.from_json(self.deployment.new_state)

    @property
    def target(self) -> GroupState | None:
        """The group this phase puts in traffic (the previous one when undoing)."""
        return self.previous if self.deployment.undo else self.new

    @property
    def retiring(self) -> GroupState | None:
        """The group this phase takes out of traffic (the new one when undoing)."""
        return self.new if self.deployment.undo else self.previous
