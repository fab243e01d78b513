"""Fixtures of the local provider's tests: a KLINK_HOME, the hello image, a real daemon.

The ``cloud`` fixture starts a real ``klink local-cloud`` daemon (detached, as ``klink serve``
would) and its finalizer stops everything that home started: daemon, instances, HAProxy.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from klink.providers import base
from klink.providers.local import control
from klink.providers.local.images import ImageStore
from klink.providers.local.provider import LocalProvider
from tests.conftest import free_port

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello" / "hello.py"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def make_image(home: Path, version: str, tmp: Path) -> base.Image:
    staging = tmp / f"stage-{version}"
    (staging / "app").mkdir(parents=True)
    shutil.copy(HELLO, staging / "app" / "hello.py")
    (staging / "etc").mkdir()
    (staging / "etc" / "hello.properties").write_text("service.port=1\n")
    return ImageStore(home).create(
        staging,
        name=f"hello-{version}",
        start_command=f"KLINK_VERSION={version} exec {shlex.quote(sys.executable)} app/hello.py",
        tags={base.TAG_APP: "hello", base.TAG_VERSION: version},
    )


@pytest.fixture
def hello_image(home: Path, tmp_path: Path) -> base.Image:
    return make_image(home, "1.0", tmp_path)


@pytest.fixture
def cloud(home: Path) -> Iterator[LocalProvider]:
    provider = LocalProvider.from_environment(
        "dev", {"provider": "local"}, SimpleNamespace(home=home)
    )
    assert isinstance(provider, LocalProvider)
    try:
        yield provider
    finally:
        provider.close()
        control.stop_all(home, grace=2.0)


def user_data(
    port: int,
    *,
    extra_files: list[dict[str, Any]] | None = None,
    properties: Mapping[str, object] | None = None,
) -> str:
    """Cloud-config for a hello instance on ``port``, with more ``properties`` (e.g. faults)."""
    lines = [f"service.port={port}", *(f"{k}={v}" for k, v in (properties or {}).items())]
    doc = {
        "write_files": [
            {"path": "/etc/hello.properties", "content": "\n".join(lines) + "\n"},
            {
                "path": "/etc/profile.d/klink.sh",
                "content": "export KLINK_APP=hello\nexport KLINK_ENV='dev'\n",
            },
            *(extra_files or []),
        ],
        "runcmd": ["echo ran > runcmd.out"],
    }
    import yaml

    return "#cloud-config\n" + yaml.safe_dump(doc)


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())


def try_get_json(url: str) -> Any:
    try:
        return get_json(url)
    except OSError:
        return None


def group_with(
    cloud: LocalProvider,
    image: base.Image,
    name: str,
    size: int,
    port: int | None = None,
    properties: Mapping[str, object] | None = None,
    **kwargs: Any,
) -> tuple[base.Group, int]:
    port = port or free_port()
    cloud.create_launch_template(
        base.LaunchTemplateSpec(
            name=name,
            image_id=image.id,
            instance_type="local",
            user_data=user_data(port, properties=properties),
        )
    )
    group = cloud.create_group(
        base.GroupSpec(
            name=name,
            launch_template=name,
            min_size=0,
            max_size=max(size, 10),
            desired_capacity=size,
            **kwargs,
        )
    )
    return group, port


def in_service(cloud: LocalProvider, name: str, count: int) -> list[base.Instance]:
    group = cloud.describe_group(name)
    ready = [i for i in group.instances if i.lifecycle_state == base.IN_SERVICE]
    return ready if len(ready) == count and len(group.instances) == count else []


def serving(instances: list[base.Instance], port: int) -> list[Any]:
    bodies = [try_get_json(f"http://{i.private_ip}:{port}/healthcheck") for i in instances]
    return bodies if all(bodies) else []
