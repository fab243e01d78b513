"""Fixtures of the end-to-end tests: the whole platform in child processes, cleaned up after.

``platform`` starts ``klink serve`` with its own ``KLINK_HOME`` in a temp dir on a free loopback
port; its finalizer runs ``klink stop`` and ``stop_all`` and then checks that no process of the
platform connected to a non-loopback address. ``cloud`` is a client of the local cloud daemon
of that home, for looking at groups, instances and HAProxy from outside the platform.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from klink.providers.local.provider import LocalProvider
from tests.e2e.platform import Platform


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    running = Platform(tmp_path)
    try:
        running.start()
        yield running
    finally:
        running.close()
    assert running.non_loopback_connects() == []


@pytest.fixture
def cloud(platform: Platform) -> Iterator[LocalProvider]:
    provider = LocalProvider.from_environment(
        "dev", {"provider": "local"}, SimpleNamespace(home=platform.home)
    )
    assert isinstance(provider, LocalProvider)
    try:
        yield provider
    finally:
        provider.close()
