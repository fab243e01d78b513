from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.conftest import world  # noqa: F401 - the deploy tests' world, shared
from tests.workers.fleet import Fleet


@pytest.fixture
def fleet(tmp_path: Path, postgres_url: str) -> Iterator[Fleet]:
    found = Fleet(tmp_path, postgres_url)
    try:
        yield found
    finally:
        found.close()
