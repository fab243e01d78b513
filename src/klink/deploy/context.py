"""What an action sees: the deployment (mutable, persisted after the action) and the services.

``Services`` holds every collaborator an action may call (metadata, config, the provider of an
environment, the notifier, the HTTP probe, the clock), injected so that the engine, the dry run
and the tests run the same actions against whatever is real in their setting. What preparation
has learnt is ``ctx.prep`` (a frozen ``Preparation``); an action changes it with
``ctx.update(...)`` and the executor stores it back with the deployment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from klink.config.params import DeploymentParams
from klink.deploy.approvals import Decision
from klink.deploy.model import Deployment, GroupState, Step
from klink.deploy.preparation import Preparation
from klink.providers.base import Provider

if TYPE_CHECKING:
    from klink.analysis.sources import MetricSource


class MetadataSource(Protocol):
    def application(self, name: str) -> dict[str, Any]: ...

    def environment(self, name: str) -> dict[str, Any]: ...

    def environments(self) -> list[dict[str, Any]]: ...


class ConfigSource(Protocol):
    def file(self, app: str, env: str, name: str, at: str) -> tuple[str, Any]:
        """``(resolved 40-hex commit, parsed JSON)`` of ``name`` at ``at``."""
        ...


class Notifier(Protocol):
    def send(self, rooms: list[str], message: str, event: Mapping[str, Any]) -> list[str]:
        """Send to every room; return the problems (never raise)."""
        ...


def environment_metrics(
    provider: Provider,
    environment: Mapping[str, Any],
    target_group_of: Callable[[str], str] | None = None,
) -> MetricSource:
    """Where a canary's metrics come from: the environment's own Prometheus
    (``prometheusUrl`` in its metadata), else the provider's (see ``analysis.factory``).
    ``target_group_of`` names the target group a group is measured through (on aws each
    deployment group has its own behind the balancer's)."""
    from klink.analysis.factory import source_for

    url = environment.get("prometheusUrl")
    return source_for(
        provider,
        prometheus_url=url if isinstance(url, str) and url else None,
        target_group_of=target_group_of,
    )


@dataclass
class Services:
    metadata: MetadataSource
    config: ConfigSource
    provider_for: Callable[[str, Mapping[str, Any]], Provider]
    notifier: Notifier
    probe: Callable[[str], bool]
    clock: Callable[[], datetime]
    # People's decisions on a deployment (approvals, rejections, overrides), by its id; None
    # where nothing records them (the release gates then fail rather than wait forever).
    decisions: Callable[[str], Sequence[Decision]] | None = None
    # A canary's metric source: (provider, environment metadata, target_group_of) -> source.
    metrics: Callable[..., MetricSource] = environment_metrics


def stored_params(data: Mapping[str, Any] | None) -> DeploymentParams:
    """The validated deployment-params a deployment stored (defaults: the schema's own)."""
    return DeploymentParams.model_validate(dict(data or {}))


@dataclass
class Context:
    deployment: Deployment
    services: Services
    step: Step
    attempt: int = 1
    started_at: datetime | None = None  # when this action first ran (a wait's deadline)
    logs: list[str] = field(default_factory=list)

    @cached_property
    def _prep(self) -> list[Preparation]:
        return [Preparation.from_json(self.deployment.facts)]

    @property
    def prep(self) -> Preparation:
        return self._prep[0]

    def update(self, **changes: Any) -> Preparation:
        self._prep[0] = self._prep[0].with_(**changes)
        self.deployment.facts = self._prep[0].to_json()
        return self._prep[0]

    def log(self, message: str) -> None:
        self.logs.append(message)

    def now(self) -> datetime:
        return self.services.clock()

    def waited(self) -> float:
        """Seconds since this action first ran."""
        if self.started_at is None:
            return 0.0
        return (self.now() - self.started_at).total_seconds()

    def provider(self) -> Provider:
        return self.services.provider_for(self.deployment.env, self.prep.environment or {})

    def params(self) -> DeploymentParams:
        cached: DeploymentParams | None = self.__dict__.get("_params")
        if cached is None:
            cached = self.__dict__["_params"] = stored_params(self.prep.params)
        return cached

    @property
    def previous(self) -> GroupState | None:
        return GroupState.from_json(self.deployment.previous_state)

    @property
    def new(self) -> GroupState | None:
        return GroupState.from_json(self.deployment.new_state)

    @property
    def baseline(self) -> GroupState | None:
        """A canary's baseline group (``strategy: canary``), or None."""
        return GroupState.from_json(self.prep.baseline)

    @property
    def target(self) -> GroupState | None:
        """The group this phase puts in traffic (the previous one when undoing).

        A step with ``group="baseline"`` acts on the canary's baseline group instead (so the
        launch and retire actions serve it unchanged), and one with ``size=N`` sees its group
        at N instances (a canary group before its promotion)."""
        if self.step.arg("group") == "baseline":
            return self.baseline
        state = self.previous if self.deployment.undo else self.new
        size = self.step.arg("size")
        if size is not None and state is not None:
            state = replace(
                state, min_size=int(size), max_size=int(size), desired_capacity=int(size)
            )
        return state

    @property
    def retiring(self) -> GroupState | None:
        """The group this phase takes out of traffic (the new one when undoing; the baseline
        group for a step with ``group="baseline"``)."""
        if self.step.arg("group") == "baseline":
            return self.baseline
        return self.new if self.deployment.undo else self.previous
