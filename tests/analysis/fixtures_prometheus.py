"""A real Prometheus (Debian's ``prometheus``) on a free loopback port, stopped after the test.

``prometheus`` yields a ``PrometheusServer`` not yet started: the test starts it with its own
scrape targets (``server.start([ScrapeTarget(...)])``) and gets its URL back.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from klink.providers.local.promserver import PrometheusServer


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is not installed: scripts/test installs it (scripts/lib/setup.sh)")
    server = PrometheusServer(tmp_path / "prometheus", scrape_interval=1.0)
    yield server
    server.stop()
