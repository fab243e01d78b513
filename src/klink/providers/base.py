"""The cloud boundary: one typed interface that every provider implements.

Methods are named by intent and return Klink's own frozen dataclasses, never a cloud's dicts;
they raise Klink's errors (NotFound, Conflict, Throttled, ProviderError). No method waits or
sleeps: waiting belongs to the orchestrator, which polls (a group being deleted is reported by
``group_exists``, not waited for).

Everything is named by Klink's names: groups, launch templates and target groups by name (the
AWS provider resolves ARNs itself), images by id (``ami-…`` or ``img-…``).

Traffic moves by weights per deployment group behind an app's balancer (see ``Provider``'s
traffic section and ``traffic.py`` beside this module for the contract and its value types).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from klink.errors import ProviderError
from klink.providers.traffic import GroupTraffic as GroupTraffic
from klink.providers.traffic import TrafficState as TrafficState

# Auto Scaling's process names; the local provider honours the same set.
PROCESSES = (
    "Launch",
    "Terminate",
    "AddToLoadBalancer",
    "AlarmNotification",
    "AZRebalance",
    "HealthCheck",
    "InstanceRefresh",
    "ReplaceUnhealthy",
    "ScheduledActions",
)

# Lifecycle states as Auto Scaling reports them (a subset; providers may report others).
PENDING = "Pending"
IN_SERVICE = "InService"
TERMINATING = "Terminating"
TERMINATED = "Terminated"

# Target health states as ELBv2 reports them.
TARGET_STATES = ("initial", "healthy", "unhealthy", "unused", "draining", "unavailable")

TAG_APP = "klink:app"
TAG_ENV = "klink:env"
TAG_VERSION = "klink:version"
TAG_CONFIG_COMMIT = "klink:config-commit"
TAG_DEPLOYMENT = "klink:deployment"
TAG_DEPLOYED_BY = "klink:deployed-by"
TAG_DEPLOYED_AT = "klink:deployed-at"
TAG_ARTIFACT_SHA256 = "klink:artifact-sha256"
TAG_BASE_IMAGE = "klink:base-image"
TAG_BAKED_AT = "klink:baked-at"
TAG_EMBARGO = "klink:embargo"  # comma-separated environment names
TAG_ROLE = "klink:role"  # "base" on base images
TAG_MANAGED_BY = "klink:managed-by"


@dataclass(frozen=True)
class Image:
    id: str
    name: str
    state: str  # available | pending | failed | deregistered
    created_at: datetime | None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def app(self) -> str | None:
        return self.tags.get(TAG_APP)

    @property
    def version(self) -> str | None:
        return self.tags.get(TAG_VERSION)

    @property
    def base_image(self) -> str | None:
        return self.tags.get(TAG_BASE_IMAGE)

    @property
    def baked_at(self) -> str | None:
        return self.tags.get(TAG_BAKED_AT)

    @property
    def embargo(self) -> tuple[str, ...]:
        raw = self.tags.get(TAG_EMBARGO, "")
        return tuple(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class BlockDevice:
    device_name: str
    size_gb: int
    volume_type: str = "gp3"
    delete_on_termination: bool = True


@dataclass(frozen=True)
class LaunchTemplateSpec:
    name: str
    image_id: str
    instance_type: str
    user_data: str  # the plain document; providers encode it as their cloud needs
    security_group_ids: tuple[str, ...] = ()
    instance_profile: str | None = None
    key_name: str | None = None
    block_devices: tuple[BlockDevice, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LaunchTemplate:
    id: str
    name: str
    image_id: str
    instance_type: str
    user_data: str
    security_group_ids: tuple[str, ...] = ()
    instance_profile: str | None = None
    key_name: str | None = None
    block_devices: tuple[BlockDevice, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass(frozen=True)
class GroupSpec:
    name: str
    launch_template: str  # launch template name
    min_size: int
    max_size: int
    desired_capacity: int
    subnets: tuple[str, ...] = ()  # subnet ids (the local provider ignores them)
    default_cooldown: int = 10
    health_check_type: str = "EC2"  # EC2 | ELB
    health_check_grace_period: int = 600
    termination_policies: tuple[str, ...] = ()
    target_groups: tuple[str, ...] = ()  # target group names
    tags: Mapping[str, str] = field(default_factory=dict)  # propagated to instances
    # Processes suspended as part of creation (e.g. AddToLoadBalancer), before any launch.
    suspended_processes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Instance:
    id: str
    lifecycle_state: str  # Pending | InService | Terminating | Terminated | …
    health: str  # Healthy | Unhealthy
    private_ip: str | None = None
    launched_at: datetime | None = None
    image_id: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Group:
    name: str
    launch_template: str | None
    min_size: int
    max_size: int
    desired_capacity: int
    created_at: datetime | None
    default_cooldown: int = 10
    health_check_type: str = "EC2"
    health_check_grace_period: int = 0
    subnets: tuple[str, ...] = ()
    termination_policies: tuple[str, ...] = ()
    target_groups: tuple[str, ...] = ()
    suspended_processes: frozenset[str] = frozenset()
    tags: Mapping[str, str] = field(default_factory=dict)
    instances: tuple[Instance, ...] = ()
    status: str | None = None  # e.g. "Delete in progress"


@dataclass(frozen=True)
class TargetGroupSpec:
    name: str
    port: int  # the instances' port
    protocol: str = "HTTP"
    health_check_path: str = "/healthcheck"
    health_check_interval_seconds: int = 5
    healthy_threshold: int = 2
    unhealthy_threshold: int = 2
    deregistration_delay_seconds: int = 30
    vpc_id: str | None = None
    # The port traffic arrives on: the listener on AWS, the HAProxy frontend port locally.
    frontend_port: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetGroup:
    name: str
    id: str  # the ARN on AWS, the name locally
    port: int
    protocol: str
    health_check_path: str
    health_check_interval_seconds: int = 5
    healthy_threshold: int = 2
    unhealthy_threshold: int = 2
    deregistration_delay_seconds: int = 30
    vpc_id: str | None = None
    frontend_port: int | None = None
    load_balancers: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetHealth:
    instance_id: str
    state: str  # one of TARGET_STATES
    port: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ScalingPolicy:
    name: str
    group: str
    policy_type: str = "SimpleScaling"  # SimpleScaling | StepScaling | TargetTrackingScaling
    adjustment_type: str | None = "ChangeInCapacity"
    scaling_adjustment: int | None = None
    cooldown: int | None = None
    target_value: float | None = None
    predefined_metric: str | None = None  # e.g. ASGAverageCPUUtilization
    id: str | None = None  # the ARN on AWS, once created


@dataclass(frozen=True)
class Alarm:
    name: str  # the short name; the cloud name is "{group}-{name}"
    group: str
    metric_name: str
    threshold: float
    comparison: str = "GreaterThanThreshold"
    namespace: str = "AWS/EC2"
    statistic: str = "Average"
    period: int = 60
    evaluation_periods: int = 1
    policies: tuple[str, ...] = ()  # names of the group's scaling policies to trigger

    @property
    def full_name(self) -> str:
        return f"{self.group}-{self.name}"


@dataclass(frozen=True)
class ScheduledAction:
    name: str
    group: str
    recurrence: str | None = None  # cron expression, UTC
    start_time: datetime | None = None
    min_size: int | None = None
    max_size: int | None = None
    desired_capacity: int | None = None


@dataclass(frozen=True)
class NotificationConfig:
    group: str
    topic: str  # SNS topic ARN on AWS
    types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subnet:
    id: str
    zone: str
    vpc_id: str
    purpose: str | None = None


@dataclass(frozen=True)
class MetricQuery:
    """One metric series to read, in CloudWatch's terms (``GetMetricData``'s ``MetricStat``).

    ``target_group`` is a Klink target group name: the provider adds the dimensions that select
    it on its cloud (on AWS ``TargetGroup`` and ``LoadBalancer``, from the ARNs), so callers
    never see ARNs. ``statistic`` is Sum, Average, Minimum, Maximum, SampleCount or a
    percentile such as ``p99``.
    """

    id: str  # the caller's name for the series: a lowercase letter, then letters, digits, _
    namespace: str
    metric_name: str
    statistic: str
    period: int  # seconds per value
    dimensions: Mapping[str, str] = field(default_factory=dict)
    target_group: str | None = None


@dataclass(frozen=True)
class MetricSeries:
    id: str
    points: tuple[tuple[datetime, float], ...] = ()  # oldest first; periods without data absent


@dataclass(frozen=True)
class PrometheusEndpoint:
    """A Prometheus that a provider runs for its own balancer's metrics, where it has one
    (local). Its series of balancer servers carry a ``group`` label (the deployment group)."""

    url: str  # http://127.0.0.1:PORT
    scrape_interval: float  # seconds: a query's smallest meaningful step is two of them


class Provider(abc.ABC):
    """One cloud account+region (or the local cloud) as Klink needs it.

    ``from_environment`` validates the environment record's provider settings and raises
    InvalidInput naming the bad field. Implementations are safe to call from several threads.

    Traffic (``attach_traffic``, ``set_traffic``, ``traffic``, ``detach_traffic``):

    - ``target_group`` names an app's balancer: the target group that infrastructure defines
      (locally an HAProxy frontend and backend; on AWS the target group that the listener's
      default ``forward`` action points at).
    - Its *members* are the deployment groups attached to it, each with a weight 0..100. A
      member's share of requests is its weight over the sum of the weights: weights are
      relative ({a: 50, b: 50} and {a: 1, b: 1} split alike); steps conventionally sum to 100.
    - Instances registered straight with the target group (``register_instances``, or a
      group's ``target_groups``: the pre-weights way) form one more member, the *direct* one,
      named like the target group itself, at weight 100 until set. ``set_traffic`` can name
      it, so a balancer deployed the old way moves to weights without a gap.
    - Attaching never moves traffic: a new member joins at weight 0; its instances (those
      running and those its group launches later, unless ``AddToLoadBalancer`` is suspended)
      are registered and health-checked by the balancer while at weight 0, so ``traffic()``
      tells when it is ready.
    - A shift is one ``set_traffic`` call, applied by the balancer at once (locally one
      runtime-API round trip to HAProxy, no reload; on AWS one ``ModifyListener`` per listener
      forwarding to the balancer).
    - Detaching takes a member out (it must be at weight 0 first).

    A deploy over weights: ``attach_traffic(tg, new)`` → poll ``traffic(tg).get(new)`` until
    ``healthy`` equals the group's size → ``set_traffic(tg, {new: 100, old: 0})``; the old
    group stays attached and warm at weight 0, so an undo is ``set_traffic(tg, {old: 100,
    new: 0})``; after the keep-warm window, ``detach_traffic(tg, old)``. A rolling step is
    ``set_traffic(tg, {new: 10, old: 90})``. No traffic method waits.
    """

    name: ClassVar[str]
    # True where instances are reachable from Klink (local): the orchestrator then probes each
    # instance's health URL itself. On AWS health comes from the API only.
    http_probes: ClassVar[bool] = False

    @classmethod
    @abc.abstractmethod
    def from_environment(cls, env: str, metadata: Mapping[str, Any], settings: Any) -> Provider:
        """Build the provider for environment ``env`` from its metadata record."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has none."""

    # Images -------------------------------------------------------------------------------
    @abc.abstractmethod
    def describe_image(self, image_id: str) -> Image:
        """Raise NotFound when the image does not exist."""

    @abc.abstractmethod
    def list_images(self, app: str | None = None) -> list[Image]:
        """Images Klink baked (tagged ``klink:app``), newest first; all of one app if given."""

    @abc.abstractmethod
    def tag_image(self, image_id: str, tags: Mapping[str, str]) -> None: ...

    @abc.abstractmethod
    def deregister_image(self, image_id: str) -> None:
        """Idempotent: deregistering a missing image is not an error."""

    # Launch templates ---------------------------------------------------------------------
    @abc.abstractmethod
    def create_launch_template(self, spec: LaunchTemplateSpec) -> LaunchTemplate:
        """Idempotent on the name: an existing template of that name is returned as it is."""

    @abc.abstractmethod
    def describe_launch_template(self, name: str) -> LaunchTemplate:
        """Raise NotFound when missing. ``user_data`` is decoded back to the plain document."""

    @abc.abstractmethod
    def delete_launch_template(self, name: str) -> None:
        """Idempotent."""

    # Groups -------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_group(self, spec: GroupSpec) -> Group:
        """Idempotent on the name: an existing group of that name is returned as it is."""

    @abc.abstractmethod
    def describe_group(self, name: str) -> Group:
        """Raise NotFound when missing (or fully deleted)."""

    @abc.abstractmethod
    def list_groups(self, pattern: str | None = None) -> list[Group]:
        """Groups whose name fully matches the regular expression ``pattern``, newest first."""

    @abc.abstractmethod
    def resize_group(
        self, name: str, *, min_size: int, max_size: int, desired_capacity: int
    ) -> None: ...

    @abc.abstractmethod
    def suspend_processes(self, name: str, processes: Sequence[str]) -> None: ...

    @abc.abstractmethod
    def resume_processes(self, name: str, processes: Sequence[str]) -> None: ...

    @abc.abstractmethod
    def delete_group(self, name: str, *, force: bool = True) -> None:
        """Start deleting (with its instances when ``force``); idempotent; never waits."""

    @abc.abstractmethod
    def group_exists(self, name: str) -> bool:
        """False once the group is entirely gone (not while its deletion is in progress)."""

    @abc.abstractmethod
    def tag_group(self, name: str, tags: Mapping[str, str]) -> None: ...

    # Target groups ------------------------------------------------------------------------
    @abc.abstractmethod
    def ensure_target_group(self, spec: TargetGroupSpec) -> TargetGroup:
        """Create the target group, or update it in place to match ``spec``. Its traffic
        members and their weights stay as they are; where a member is a target group of its
        own (aws), it takes the new health check too."""

    @abc.abstractmethod
    def describe_target_group(self, name: str) -> TargetGroup:
        """Raise NotFound when missing."""

    @abc.abstractmethod
    def list_target_groups(self) -> list[TargetGroup]: ...

    @abc.abstractmethod
    def delete_target_group(self, name: str) -> None:
        """Idempotent."""

    @abc.abstractmethod
    def register_instances(self, target_group: str, instance_ids: Sequence[str]) -> None:
        """Idempotent: registering a registered instance changes nothing."""

    @abc.abstractmethod
    def deregister_instances(self, target_group: str, instance_ids: Sequence[str]) -> None:
        """Start draining; idempotent. Drained instances disappear from ``target_health``."""

    @abc.abstractmethod
    def target_health(self, target_group: str) -> list[TargetHealth]: ...

    # Traffic: weights per deployment group behind a balancer (contract: class docstring) ---
    @abc.abstractmethod
    def attach_traffic(self, target_group: str, group: str) -> None:
        """Attach deployment group ``group`` to the balancer at weight 0.

        Its instances ``InService`` now are registered, and those it launches later unless
        ``AddToLoadBalancer`` is suspended (calling again registers any that joined
        ``InService`` meanwhile). Idempotent: an attached member keeps its weight. NotFound
        (field ``target_group`` or ``group``) when either is missing; InvalidInput when the
        group is named like the target group; Conflict when the balancer cannot take it (on
        AWS: no listener forwards to the target group, or its forward action is full).
        """

    @abc.abstractmethod
    def set_traffic(self, target_group: str, weights: Mapping[str, int]) -> None:
        """Set the weights of the named members in one change; members not named keep theirs.

        Every name must be a member (InvalidInput, field ``weights``, naming it otherwise);
        each weight an int 0..100; after the change at least one member must have weight > 0.
        Setting weights that are already set changes nothing (safe to repeat after a crash).
        """

    @abc.abstractmethod
    def traffic(self, target_group: str) -> TrafficState:
        """Each member's weight and instances (registered, healthy through the balancer,
        draining), read in one call. The direct member is listed while it has a weight or
        instances; locally, a detached member while its instances drain (weight 0)."""

    @abc.abstractmethod
    def detach_traffic(self, target_group: str, group: str) -> None:
        """Take member ``group`` out of the balancer: its instances drain (locally within the
        target group's deregistration delay; on AWS its own target group leaves the listener
        and is deleted). Conflict (field ``weights``) while its weight is above 0; the direct
        member cannot be detached (InvalidInput); idempotent."""

    # Scaling policies, alarms, scheduled actions, notifications ---------------------------
    @abc.abstractmethod
    def put_scaling_policy(self, policy: ScalingPolicy) -> ScalingPolicy: ...

    @abc.abstractmethod
    def list_scaling_policies(self, group: str) -> list[ScalingPolicy]: ...

    @abc.abstractmethod
    def delete_scaling_policy(self, group: str, name: str) -> None: ...

    @abc.abstractmethod
    def put_alarm(self, alarm: Alarm) -> None:
        """The cloud alarm is named ``{group}-{name}`` with the group as its dimension."""

    @abc.abstractmethod
    def list_alarms(self, group: str) -> list[Alarm]: ...

    @abc.abstractmethod
    def delete_alarms(self, group: str, names: Sequence[str]) -> None:
        """``names`` are short names; idempotent."""

    @abc.abstractmethod
    def put_scheduled_action(self, action: ScheduledAction) -> None: ...

    @abc.abstractmethod
    def list_scheduled_actions(self, group: str) -> list[ScheduledAction]: ...

    @abc.abstractmethod
    def delete_scheduled_action(self, group: str, name: str) -> None: ...

    @abc.abstractmethod
    def put_notification(self, config: NotificationConfig) -> None: ...

    @abc.abstractmethod
    def list_notifications(self, group: str) -> list[NotificationConfig]: ...

    @abc.abstractmethod
    def delete_notification(self, group: str, topic: str) -> None: ...

    # Network ------------------------------------------------------------------------------
    @abc.abstractmethod
    def subnets(self, purpose: str | None = None) -> list[Subnet]:
        """Subnets tagged ``purpose`` (all when None), with their zones."""

    @abc.abstractmethod
    def security_group_ids(self, names: Sequence[str]) -> dict[str, str]:
        """Name → id; raise NotFound naming the first missing one."""

    @abc.abstractmethod
    def vpc_of_subnet(self, subnet_id: str) -> str: ...

    # Metrics ------------------------------------------------------------------------------
    def metric_data(
        self, queries: Sequence[MetricQuery], start: datetime, end: datetime
    ) -> dict[str, MetricSeries]:
        """Each query's values over [start, end), by query id.

        Not abstract: a provider without a metrics service of its own (local: its balancer is
        scraped by Prometheus instead, see ``klink.analysis``) says so with this error.
        """
        raise ProviderError(f"the {self.name} provider has no metric data", code="unsupported")

    def prometheus(self) -> PrometheusEndpoint | None:
        """The Prometheus this provider owns, started if it must be, or None: this provider
        has no Prometheus of its own (aws: its metrics are ``metric_data``)."""
        return None
