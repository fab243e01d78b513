"""What preparation learns, as one typed, frozen record (stored as JSON in the deployment).

Each preparation action reads something (the app, the environment, config files, the image, the
network) and returns a new ``Preparation`` with its fields filled in (``Context.update``); the
deployment phase only reads it. A field that an action has not filled yet is ``None`` or empty,
and reading it before then is a programming error that ``require`` names.

``HealthGate`` is how a group is checked healthy (port, path, gate). It is recorded on the
group it belongs to (``GroupState.health``, and the group's ``klink:health`` tag in the cloud),
so that an undo checks the group it restores with that group's own values, never the new
config's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from klink.config import params as config_params

TAG_HEALTH = "klink:health"
# The target groups a group is a traffic member of (by weight), comma-separated; a group without
# it was registered with its target groups directly (before weights).
TAG_TRAFFIC = "klink:traffic"


@dataclass(frozen=True)
class HealthGate:
    port: int = config_params.DEFAULT_SERVICE_PORT
    path: str = config_params.DEFAULT_HEALTHCHECK_PATH
    interval: float = 5.0
    timeout: float = 500.0  # seconds an instance health wait may take
    balancer_timeout: float = 500.0  # seconds a target-group health wait may take
    skip: bool = False

    def tag(self) -> str:
        return (
            f"port={self.port};path={self.path};interval={self.interval:g};"
            f"timeout={self.timeout:g};balancer={self.balancer_timeout:g};skip={int(self.skip)}"
        )

    @classmethod
    def from_tag(cls, raw: str | None) -> HealthGate:
        """The gate a group was deployed with, from its tag; defaults for unknown parts."""
        gate = cls()
        if not raw:
            return gate
        parts = dict(p.split("=", 1) for p in raw.split(";") if "=" in p)
        try:
            return cls(
                port=int(parts.get("port", gate.port)),
                path=parts.get("path", gate.path) or gate.path,
                interval=float(parts.get("interval", gate.interval)),
                timeout=float(parts.get("timeout", gate.timeout)),
                balancer_timeout=float(parts.get("balancer", gate.balancer_timeout)),
                skip=parts.get("skip", "0") == "1",
            )
        except ValueError:
            return gate

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> HealthGate:
        if not data:
            return cls()
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def of(cls, params: config_params.DeploymentParams, props: Mapping[str, Any]) -> HealthGate:
        interval = params.health_check_interval_seconds
        return cls(
            port=config_params.service_port(props),
            path=config_params.healthcheck_path(props),
            interval=interval,
            timeout=interval * params.instance_healthy_attempts,
            balancer_timeout=interval * params.load_balancer_healthy_attempts,
            skip=params.skip_instance_healthcheck,
        )


@dataclass(frozen=True)
class ImageFacts:
    id: str
    name: str
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Names:
    group: str
    launch_template: str


@dataclass(frozen=True)
class Preparation:
    application: Mapping[str, Any] | None = None
    environment: Mapping[str, Any] | None = None
    provider: str | None = None
    http_probes: bool = False
    properties: Mapping[str, Any] | None = None
    params_raw: Any = None
    params: Mapping[str, Any] | None = None  # validated deployment-params, defaults filled in
    launch_data: tuple[str, ...] = ()
    image: ImageFacts | None = None
    security_group_ids: tuple[str, ...] = ()
    subnets: tuple[str, ...] = ()
    target_groups: tuple[str, ...] = ()
    names: Names | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    user_data: str | None = None
    policies: tuple[Mapping[str, Any], ...] = ()
    alarms: tuple[Mapping[str, Any], ...] = ()
    scheduled_actions: tuple[Mapping[str, Any], ...] = ()
    kept_group: Mapping[str, Any] | None = None
    stale_kept: Mapping[str, str | None] = field(default_factory=dict)
    resize: Mapping[str, int] | None = None  # a resize deployment's sizes
    promoted_from: Mapping[str, Any] | None = None  # a promotion's lineage: env, deployment
    # ``strategy: canary``: the baseline group (the previous group's image and config, fresh,
    # as big as the canary; a ``GroupState`` as JSON), and each judged interval's report
    # (``analysis.judge.IntervalReport.to_json``), in order.
    baseline: Mapping[str, Any] | None = None
    canary_reports: tuple[Mapping[str, Any], ...] = ()

    def require(self, name: str) -> Any:
        value = getattr(self, name)
        if value is None:
            raise RuntimeError(f"preparation has no {name} yet: an action runs out of order")
        return value

    def with_(self, **changes: Any) -> Preparation:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: v for k, v in data.items() if v not in (None, (), {}, False)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Preparation:
        raw = dict(data or {})
        known = {f.name for f in fields(cls)}
        raw = {k: v for k, v in raw.items() if k in known}
        if raw.get("image"):
            raw["image"] = ImageFacts(**raw["image"])
        if raw.get("names"):
            raw["names"] = Names(**raw["names"])
        for key in ("launch_data", "security_group_ids", "subnets", "target_groups"):
            raw[key] = tuple(raw.get(key) or ())
        for key in ("policies", "alarms", "scheduled_actions", "canary_reports"):
            raw[key] = tuple(dict(item) for item in raw.get(key) or ())
        return cls(**raw)
