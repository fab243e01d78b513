"""``LocalProvider``: the provider interface for environments on the local cloud.

Images are plain files, read directly (``images.py``). Everything else is a call to this
``KLINK_HOME``'s daemon (``daemon.py``), found through ``local/daemon.json`` and started detached
when none runs, so that instances and HAProxy outlive the orchestrator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from klink.errors import InvalidInput, NotFound, ProviderError
from klink.providers import base
from klink.providers.local import codec, daemon
from klink.providers.local.images import ImageMethods, ImageStore


class LocalProvider(ImageMethods, base.Provider):
    name = "local"
    http_probes = True

    def __init__(self, home: Path, url: str, transport: httpx.BaseTransport | None = None) -> None:
        self.home = Path(home)
        self.images = ImageStore(self.home)
        self.http = httpx.Client(base_url=url, timeout=30.0, transport=transport)

    @classmethod
    def from_environment(
        cls, env: str, metadata: Mapping[str, Any], settings: Any
    ) -> base.Provider:
        home = getattr(settings, "home", None)
        if home is None:
            raise InvalidInput("settings have no KLINK_HOME", field="KLINK_HOME")
        if metadata.get("provider", "local") != "local":
            raise InvalidInput(
                f"environment {env} does not use the local provider", field="provider"
            )
        return cls(Path(home), daemon.ensure(Path(home)))

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._post(method, args, kwargs)

    def _post(
        self,
        method: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        timeout: float | None = None,
    ) -> Any:
        body = {"args": codec.encode(list(args)), "kwargs": codec.encode(dict(kwargs))}
        try:
            response = self.http.post(
                f"/call/{method}",
                json=body,
                timeout=self.http.timeout if timeout is None else httpx.Timeout(timeout),
            )
        except httpx.HTTPError as exc:
            raise ProviderError(f"local cloud unreachable: {exc}") from None
        try:
            data = response.json()
        except ValueError:
            raise ProviderError(f"local cloud answered {response.status_code}") from None
        if response.status_code != 200:
            raise codec.error_from_json(response.status_code, data)
        return codec.decode(data["result"])

    def instance_log(self, instance_id: str, tail: int = 200) -> str:
        try:
            response = self.http.get(f"/instances/{instance_id}/log", params={"tail": tail})
        except httpx.HTTPError as exc:
            raise ProviderError(f"local cloud unreachable: {exc}") from None
        if response.status_code != 200:
            raise codec.error_from_json(response.status_code, response.json())
        return response.text

    # Images: files, no daemon needed -------------------------------------------------------
    # Launch templates ---------------------------------------------------------------------
    def create_launch_template(self, spec: base.LaunchTemplateSpec) -> base.LaunchTemplate:
        result: base.LaunchTemplate = self._call("create_launch_template", spec)
        return result

    def describe_launch_template(self, name: str) -> base.LaunchTemplate:
        result: base.LaunchTemplate = self._call("describe_launch_template", name)
        return result

    def delete_launch_template(self, name: str) -> None:
        self._call("delete_launch_template", name)

    # Groups -------------------------------------------------------------------------------
    def create_group(self, spec: base.GroupSpec) -> base.Group:
        result: base.Group = self._call("create_group", spec)
        return result

    def describe_group(self, name: str) -> base.Group:
        result: base.Group = self._call("describe_group", name)
        return result

    def list_groups(self, pattern: str | None = None) -> list[base.Group]:
        result: list[base.Group] = self._call("list_groups", pattern)
        return result

    def resize_group(
        self, name: str, *, min_size: int, max_size: int, desired_capacity: int
    ) -> None:
        self._call(
            "resize_group",
            name,
            min_size=min_size,
            max_size=max_size,
            desired_capacity=desired_capacity,
        )

    def suspend_processes(self, name: str, processes: Sequence[str]) -> None:
        self._call("suspend_processes", name, list(processes))

    def resume_processes(self, name: str, processes: Sequence[str]) -> None:
        self._call("resume_processes", name, list(processes))

    def delete_group(self, name: str, *, force: bool = True) -> None:
        self._call("delete_group", name, force=force)

    def group_exists(self, name: str) -> bool:
        return bool(self._call("group_exists", name))

    def tag_group(self, name: str, tags: Mapping[str, str]) -> None:
        self._call("tag_group", name, dict(tags))

    # Target groups ------------------------------------------------------------------------
    def ensure_target_group(self, spec: base.TargetGroupSpec) -> base.TargetGroup:
        result: base.TargetGroup = self._call("ensure_target_group", spec)
        return result

    def describe_target_group(self, name: str) -> base.TargetGroup:
        result: base.TargetGroup = self._call("describe_target_group", name)
        return result

    def list_target_groups(self) -> list[base.TargetGroup]:
        result: list[base.TargetGroup] = self._call("list_target_groups")
        return result

    def delete_target_group(self, name: str) -> None:
        self._call("delete_target_group", name)

    def register_instances(self, target_group: str, instance_ids: Sequence[str]) -> None:
        self._call("register_instances", target_group, list(instance_ids))

    def deregister_instances(self, target_group: str, instance_ids: Sequence[str]) -> None:
        self._call("deregister_instances", target_group, list(instance_ids))

    def target_health(self, target_group: str) -> list[base.TargetHealth]:
        result: list[base.TargetHealth] = self._call("target_health", target_group)
        return result

    # Traffic: one daemon call each (the daemon sends a shift to HAProxy in one round trip) --
    def attach_traffic(self, target_group: str, group: str) -> None:
        self._call("attach_traffic", target_group, group)

    def set_traffic(self, target_group: str, weights: Mapping[str, int]) -> None:
        self._call("set_traffic", target_group, dict(weights))

    def traffic(self, target_group: str) -> base.TrafficState:
        result: base.TrafficState = self._call("traffic", target_group)
        return result

    def detach_traffic(self, target_group: str, group: str) -> None:
        self._call("detach_traffic", target_group, group)

    # Metrics: the daemon's own Prometheus, which scrapes its /metrics (groups labelled) -----
    def prometheus(self) -> base.PrometheusEndpoint:
        # Its first start waits until Prometheus is ready: longer than an ordinary call.
        result: base.PrometheusEndpoint = self._post("prometheus", (), {}, timeout=90.0)
        return result

    # Policies, alarms, scheduled actions, notifications -----------------------------------
    def put_scaling_policy(self, policy: base.ScalingPolicy) -> base.ScalingPolicy:
        result: base.ScalingPolicy = self._call("put_scaling_policy", policy)
        return result

    def list_scaling_policies(self, group: str) -> list[base.ScalingPolicy]:
        result: list[base.ScalingPolicy] = self._call("list_scaling_policies", group)
        return result

    def delete_scaling_policy(self, group: str, name: str) -> None:
        self._call("delete_scaling_policy", group, name)

    def put_alarm(self, alarm: base.Alarm) -> None:
        self._call("put_alarm", alarm)

    def list_alarms(self, group: str) -> list[base.Alarm]:
        result: list[base.Alarm] = self._call("list_alarms", group)
        return result

    def delete_alarms(self, group: str, names: Sequence[str]) -> None:
        self._call("delete_alarms", group, list(names))

    def put_scheduled_action(self, action: base.ScheduledAction) -> None:
        self._call("put_scheduled_action", action)

    def list_scheduled_actions(self, group: str) -> list[base.ScheduledAction]:
        result: list[base.ScheduledAction] = self._call("list_scheduled_actions", group)
        return result

    def delete_scheduled_action(self, group: str, name: str) -> None:
        self._call("delete_scheduled_action", group, name)

    def put_notification(self, config: base.NotificationConfig) -> None:
        self._call("put_notification", config)

    def list_notifications(self, group: str) -> list[base.NotificationConfig]:
        result: list[base.NotificationConfig] = self._call("list_notifications", group)
        return result

    def delete_notification(self, group: str, topic: str) -> None:
        self._call("delete_notification", group, topic)

    # Network: one local subnet, zone and VPC; security groups do not apply ---------------
    def subnets(self, purpose: str | None = None) -> list[base.Subnet]:
        return [base.Subnet(id="local", zone="local", vpc_id="local", purpose=purpose)]

    def security_group_ids(self, names: Sequence[str]) -> dict[str, str]:
        return {n: n for n in names}

    def vpc_of_subnet(self, subnet_id: str) -> str:
        if subnet_id != "local":
            raise NotFound(f"subnet {subnet_id} does not exist", field="subnet")
        return "local"
