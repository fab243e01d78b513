"""A real local cloud for the analysis tests: daemon, HAProxy, ``hello`` instances launched from
images, deployment groups as weighted traffic members of one balancer, and the daemon's own
Prometheus, which scrapes its ``/metrics`` (servers labelled with their groups)."""

from __future__ import annotations

import http.client
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from klink.providers import base
from klink.providers.local import control
from klink.providers.local.metrics import SCRAPE_JOB
from klink.providers.local.promserver import PrometheusServer
from klink.providers.local.provider import LocalProvider
from tests.conftest import free_port
from tests.local.conftest import group_with, in_service, make_image, wait_for

TARGET_GROUP = "hello-dev"


@dataclass(frozen=True)
class Member:
    version: str
    size: int = 1
    properties: Mapping[str, object] = field(default_factory=dict)


@contextmanager
def local_cloud(home: Path) -> Iterator[LocalProvider]:
    """A provider on a fresh daemon for ``home``; everything that home started is stopped after."""
    provider = LocalProvider.from_environment(
        "dev", {"provider": "local"}, SimpleNamespace(home=home)
    )
    assert isinstance(provider, LocalProvider)
    try:
        yield provider
    finally:
        provider.close()
        control.stop_all(home, grace=2.0)


def balancer(cloud: LocalProvider) -> tuple[int, int]:
    """The app's target group: (instances' port, frontend port)."""
    port, frontend = free_port(), free_port()
    cloud.ensure_target_group(
        base.TargetGroupSpec(
            name=TARGET_GROUP,
            port=port,
            health_check_interval_seconds=1,
            healthy_threshold=2,
            unhealthy_threshold=2,
            deregistration_delay_seconds=1,
            frontend_port=frontend,
        )
    )
    return port, frontend


def add_members(
    cloud: LocalProvider, home: Path, tmp: Path, port: int, members: Mapping[str, Member]
) -> None:
    """Launch each group, attach it at weight 0 and wait until HAProxy finds it healthy."""
    for name, member in members.items():
        image = make_image(home, member.version, tmp)
        group_with(cloud, image, name, member.size, port=port, properties=member.properties)
    wait_for(lambda: all(in_service(cloud, n, m.size) for n, m in members.items()), timeout=40)
    for name in members:
        cloud.attach_traffic(TARGET_GROUP, name)

    def healthy() -> bool:
        state = {g.name: g.healthy for g in cloud.traffic(TARGET_GROUP).groups}
        return all(state.get(n) == m.size for n, m in members.items())

    wait_for(healthy, timeout=30, interval=0.2)


def servers_of(cloud: LocalProvider, group: str) -> tuple[str, ...]:
    member = cloud.traffic(TARGET_GROUP).get(group)
    assert member is not None, group
    return member.servers


def scraping_prometheus(cloud: LocalProvider, home: Path) -> base.PrometheusEndpoint:
    """The cloud's own Prometheus, once it has scraped the daemon at least once."""
    endpoint = cloud.prometheus()
    PrometheusServer(home / "local" / "prometheus").wait_scraped(SCRAPE_JOB)
    return endpoint


def answers(frontend: int, count: int, pause: float = 0.0) -> Counter[str]:
    """``count`` requests to ``/`` through HAProxy on one connection, ``pause`` seconds apart:
    how many of each status + body."""
    seen: Counter[str] = Counter()
    connection = http.client.HTTPConnection("127.0.0.1", frontend, timeout=10)
    try:
        for _ in range(count):
            connection.request("GET", "/")
            response = connection.getresponse()
            seen[f"{response.status} {response.read().decode().strip()}"] += 1
            time.sleep(pause)
    finally:
        connection.close()
    return seen
