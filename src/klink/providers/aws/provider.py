"""``AwsProvider``: the provider interface on one AWS account+region, composed of small parts.

Each concern lives in its own module (images, templates, groups, targets, traffic, scaling,
network), all sharing one ``AwsSession`` (clients, role credentials, retries, error
translation). This class only delegates; AWS-only extras (``share_image``, ``find_images``)
are for baking.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from klink.providers.aws.groups import Groups
from klink.providers.aws.images import Images
from klink.providers.aws.metrics import Metrics
from klink.providers.aws.network import Network
from klink.providers.aws.scaling import Scaling
from klink.providers.aws.session import AwsConfig, AwsSession
from klink.providers.aws.targets import Targets
from klink.providers.aws.templates import Templates
from klink.providers.aws.traffic import Traffic
from klink.providers.base import (
    Alarm,
    Group,
    GroupSpec,
    Image,
    LaunchTemplate,
    LaunchTemplateSpec,
    MetricQuery,
    MetricSeries,
    NotificationConfig,
    Provider,
    ScalingPolicy,
    ScheduledAction,
    Subnet,
    TargetGroup,
    TargetGroupSpec,
    TargetHealth,
    TrafficState,
)


class AwsProvider(Provider):
    name: ClassVar[str] = "aws"
    http_probes: ClassVar[bool] = False

    def __init__(self, session: AwsSession, env: str | None = None) -> None:
        self.env = env
        self.session = session
        self.images = Images(session)
        self.templates = Templates(session)
        self.targets = Targets(session)
        self.groups = Groups(session, self.targets)
        self.weights = Traffic(session, self.targets, self.groups)
        self.scaling = Scaling(session)
        self.network = Network(session)
        self.metrics = Metrics(session, self.targets)

    @classmethod
    def from_environment(
        cls,
        env: str,
        metadata: Mapping[str, Any],
        settings: Any = None,
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> AwsProvider:
        config = AwsConfig.from_metadata(metadata)
        session = AwsSession(config, sleep=sleep) if sleep else AwsSession(config)
        return cls(session, env)

    def close(self) -> None:
        self.session.close()

    def caller_identity(self) -> str:
        """The ARN Klink acts as in this account (the assumed role, when there is one)."""
        sts = self.session.client("sts")
        answer = self.session.call("get caller identity", sts.get_caller_identity)
        return str(answer["Arn"])

    # Images -------------------------------------------------------------------------------
    def describe_image(self, image_id: str) -> Image:
        return self.images.describe(image_id)

    def list_images(self, app: str | None = None) -> list[Image]:
        return self.images.by_app(app)

    def find_images(
        self, name_prefix: str | None = None, tags: Mapping[str, str] | None = None
    ) -> list[Image]:
        """The account's images whose name starts with ``name_prefix`` and that carry ``tags``."""
        return self.images.find(name_prefix, tags)

    def tag_image(self, image_id: str, tags: Mapping[str, str]) -> None:
        self.images.tag(image_id, tags)

    def share_image(self, image_id: str, account_ids: Sequence[str]) -> None:
        """Grant ``account_ids`` launch permission on the image; idempotent."""
        self.images.share(image_id, account_ids)

    def image_launch_permissions(self, image_id: str) -> list[str]:
        return self.images.launch_permissions(image_id)

    def deregister_image(self, image_id: str) -> None:
        self.images.deregister(image_id)

    # Launch templates ---------------------------------------------------------------------
    def create_launch_template(self, spec: LaunchTemplateSpec) -> LaunchTemplate:
        return self.templates.create(spec)

    def describe_launch_template(self, name: str) -> LaunchTemplate:
        return self.templates.describe(name)

    def delete_launch_template(self, name: str) -> None:
        self.templates.delete(name)

    # Groups -------------------------------------------------------------------------------
    def create_group(self, spec: GroupSpec) -> Group:
        return self.groups.create(spec)

    def describe_group(self, name: str) -> Group:
        return self.groups.describe(name)

    def list_groups(self, pattern: str | None = None) -> list[Group]:
        return self.groups.matching(pattern)

    def resize_group(
        self, name: str, *, min_size: int, max_size: int, desired_capacity: int
    ) -> None:
        self.groups.resize(
            name, min_size=min_size, max_size=max_size, desired_capacity=desired_capacity
        )

    def suspend_processes(self, name: str, processes: Sequence[str]) -> None:
        self.groups.suspend(name, processes)

    def resume_processes(self, name: str, processes: Sequence[str]) -> None:
        self.groups.resume(name, processes)

    def delete_group(self, name: str, *, force: bool = True) -> None:
        self.groups.delete(name, force=force)

    def group_exists(self, name: str) -> bool:
        return self.groups.exists(name)

    def tag_group(self, name: str, tags: Mapping[str, str]) -> None:
        self.groups.tag(name, tags)

    # Target groups ------------------------------------------------------------------------
    def ensure_target_group(self, spec: TargetGroupSpec) -> TargetGroup:
        target_group = self.targets.ensure(spec)
        self.weights.follow_home(spec.name)  # deployment groups' members are its copies
        return target_group

    def describe_target_group(self, name: str) -> TargetGroup:
        return self.targets.describe(name)

    def list_target_groups(self) -> list[TargetGroup]:
        return self.targets.all()

    def delete_target_group(self, name: str) -> None:
        self.targets.delete(name)

    def register_instances(self, target_group: str, instance_ids: Sequence[str]) -> None:
        self.targets.register(target_group, instance_ids)

    def deregister_instances(self, target_group: str, instance_ids: Sequence[str]) -> None:
        self.targets.deregister(target_group, instance_ids)

    def target_health(self, target_group: str) -> list[TargetHealth]:
        return self.targets.health(target_group)

    # Traffic: weighted target groups in the listener's forward action (``traffic.py``) ------
    def attach_traffic(self, target_group: str, group: str) -> None:
        self.weights.attach(target_group, group)

    def set_traffic(self, target_group: str, weights: Mapping[str, int]) -> None:
        self.weights.set(target_group, weights)

    def traffic(self, target_group: str) -> TrafficState:
        return self.weights.traffic(target_group)

    def detach_traffic(self, target_group: str, group: str) -> None:
        self.weights.detach(target_group, group)

    # Scaling ------------------------------------------------------------------------------
    def put_scaling_policy(self, policy: ScalingPolicy) -> ScalingPolicy:
        return self.scaling.put_policy(policy)

    def list_scaling_policies(self, group: str) -> list[ScalingPolicy]:
        return self.scaling.policies(group)

    def delete_scaling_policy(self, group: str, name: str) -> None:
        self.scaling.delete_policy(group, name)

    def put_alarm(self, alarm: Alarm) -> None:
        self.scaling.put_alarm(alarm)

    def list_alarms(self, group: str) -> list[Alarm]:
        return self.scaling.alarms(group)

    def delete_alarms(self, group: str, names: Sequence[str]) -> None:
        self.scaling.delete_alarms(group, names)

    def put_scheduled_action(self, action: ScheduledAction) -> None:
        self.scaling.put_scheduled(action)

    def list_scheduled_actions(self, group: str) -> list[ScheduledAction]:
        return self.scaling.scheduled(group)

    def delete_scheduled_action(self, group: str, name: str) -> None:
        self.scaling.delete_scheduled(group, name)

    def put_notification(self, config: NotificationConfig) -> None:
        self.scaling.put_notification(config)

    def list_notifications(self, group: str) -> list[NotificationConfig]:
        return self.scaling.notifications(group)

    def delete_notification(self, group: str, topic: str) -> None:
        self.scaling.delete_notification(group, topic)

    # Network ------------------------------------------------------------------------------
    def subnets(self, purpose: str | None = None) -> list[Subnet]:
        return self.network.subnets(purpose)

    def security_group_ids(self, names: Sequence[str]) -> dict[str, str]:
        return self.network.security_group_ids(names)

    def vpc_of_subnet(self, subnet_id: str) -> str:
        return self.network.vpc_of_subnet(subnet_id)

    # Metrics ------------------------------------------------------------------------------
    def metric_data(
        self, queries: Sequence[MetricQuery], start: datetime, end: datetime
    ) -> dict[str, MetricSeries]:
        return self.metrics.data(queries, start, end)
