"""Schemathesis over every service of a real ``klink serve``: 0 failures.

The server runs as a child process on loopback (``tests.e2e.platform``) with ``netblock`` as its
``sitecustomize``, so no generated request can make it reach past the machine. For each service
schemathesis reads the published ``/{service}/openapi.json`` and runs its examples, coverage,
fuzzing and stateful phases with the checks the issue names: no server error, every status
documented, every body as documented. The run is bounded (a fixed seed, no shrinking, one
worker, a time budget per service in proportion to its operations: about 150 s in all) so the
suite stays within CI's time on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from klink.server import SERVICES
from tests.e2e.platform import Platform

HERE = Path(__file__).resolve().parent
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
BUDGET_SECONDS = 150.0
MIN_SECONDS = 8


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("fuzz")
    guard = root / "netblock"
    guard.mkdir()
    shutil.copy(HERE / "netblock.py", guard / "sitecustomize.py")
    blocked = root / "non-loopback.log"
    path = os.pathsep.join(p for p in (str(guard), os.environ.get("PYTHONPATH", "")) if p)
    platform = Platform(root, {"PYTHONPATH": path, "KLINK_NETBLOCK_LOG": str(blocked)})
    try:
        platform.start()
        _seed(platform)
        yield platform
    finally:
        platform.close()
    assert not blocked.exists(), blocked.read_text()


def _seed(platform: Platform) -> None:
    """The records the documents' examples name (app ``search``, env ``prod``), so that the
    examples phase reaches past the 404s: config repositories, deployments, plans, bakes."""
    platform.call(
        "PUT",
        "/metadata/environments/prod",
        json={"metadata": {"provider": "local", "createConfigRepo": True}},
    )
    platform.call(
        "PUT", "/metadata/applications/search", json={"metadata": {"contact": "s@example.com"}}
    )
    platform.call("POST", "/auth/tokens", json={"name": "ci", "role": "deployer"})


def _operations(document: dict[str, object]) -> int:
    paths = document.get("paths", {})
    assert isinstance(paths, dict)
    return sum(len(item) for item in paths.values())


def _budgets(platform: Platform) -> dict[str, tuple[int, dict[str, object]]]:
    documents = {s: httpx.get(f"{platform.url}/{s}/openapi.json").json() for s in SERVICES}
    total = sum(_operations(d) for d in documents.values())
    return {
        s: (max(MIN_SECONDS, round(BUDGET_SECONDS * _operations(d) / total)), d)
        for s, d in documents.items()
    }


@pytest.mark.slow
@pytest.mark.parametrize("service", list(SERVICES))
def test_service_answers_as_documented(served: Platform, service: str, tmp_path: Path) -> None:
    seconds, document = _budgets(served)[service]
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(document))
    st = Path(sys.executable).with_name("st")
    command = [
        str(st),
        "run",
        str(schema),
        "--url",
        f"{served.url}/{service}",
        "--header",
        f"Authorization: Bearer {served.token}",
        "--checks",
        CHECKS,
        "--max-time",
        str(seconds),
        "--seed",
        "1",
        "--no-shrink",
        "--workers",
        "1",
        "--request-timeout",
        "30",
    ]
    result = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"},
        check=False,
    )
    report = result.stdout[-20000:] + result.stderr[-5000:]
    assert result.returncode == 0, f"schemathesis found failures in {service}:\n{report}"
    assert " passed" in result.stdout, report
