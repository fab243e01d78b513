"""``klink serve`` starts the local cloud only when an environment uses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from klink.metadata.store import MetadataStore
from klink.providers.local import control, daemon
from klink.providers.local.autostart import start_if_used
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
    assert start_if_used(runtime) is None
    assert daemon.running(home) is None
    metadata.create("environment", "dev", {"provider": "local"}, actor="t", at=runtime.clock())
    try:
        url = start_if_used(runtime)
        info = daemon.running(home)
        assert info is not None
        assert url == info["url"]
        # Already running: the same daemon is found, not a second one started.
        assert start_if_used(runtime) == url
        assert daemon.running(home) == info
    finally:
        control.stop_all(home, grace=1.0)
