"""``klink serve`` starts the local cloud only when an environment uses it: the server's
composition decides, from the environments in the store it holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from klink.metadata.store import MetadataStore
from klink.providers.local import control, daemon
from klink.server import start_local_cloud
from klink.service.runtime import Runtime

pytestmark = pytest.mark.slow


def test_starts_daemon_only_for_local_environments(runtime: Runtime, home: Path) -> None:
    metadata = MetadataStore(runtime.engine)
    metadata.create(
        "environment",
        "prod",
        {"provider": "aws", "region": "eu-west-1"},
        actor="t",
        at=runtime.clock(),
    )
    assert start_local_cloud(runtime) is None
    assert daemon.running(home) is None
    metadata.create("environment", "dev", {"provider": "local"}, actor="t", at=runtime.clock())
    try:
        url = start_local_cloud(runtime)
        info = daemon.running(home)
        assert info is not None
        assert url == info["url"]
        # Already running: the same daemon is found, not a second one started.
        assert start_local_cloud(runtime) == url
        assert daemon.running(home) == info
    finally:
        control.stop_all(home, grace=1.0)
