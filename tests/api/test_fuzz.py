"""Schemathesis over every service of a real ``klink serve``: 0 failures.

The server runs as a child process on loopback (``tests.e2e.platform``) with ``netblock`` as its
``sitecustomize``, so no generated request can make it reach past the machine. For each service
schemathesis reads the published ``/{service}/openapi.json`` and runs its examples, coverage,
fuzzing and stateful phases (existing names and a deployment id are drawn for about half the
path parameters, from ``schemathesis.toml`` dictionaries) with the checks the issue names: no
server error, every status documented, every body as documented. ``KNOWN_DEFECTS`` leaves out
an operation only for a defect found and not yet fixed, saying which. The run is bounded (a
fixed seed, no shrinking, one worker, a time budget per service in proportion to its
operations: about 150 s in all) so the suite stays within CI's time on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from klink.server import SERVICES
from tests.e2e.platform import Platform

HERE = Path(__file__).resolve().parent
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
BUDGET_SECONDS = 150.0
MIN_SECONDS = 8
# Operations left out of the run, each for a defect found and not yet fixed where it lies.
KNOWN_DEFECTS: dict[tuple[str, str, str], str] = {
    # GET /deploy/deployments/{id}/logs?since=99999999999999999999999 answers 500
    # (OverflowError binding the integer in SQLite): `since` has no upper bound in
    # deploy/api_read.py, which is being rewritten; issue 18, item 1 (numbers in range).
    ("deploy", "get", "/deployments/{deployment_id}/logs"): "since beyond 2**63 answers 500",
}


@dataclass
class Served:
    platform: Platform
    deployment: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("fuzz")
    guard = root / "netblock"
    guard.mkdir()
    shutil.copy(HERE / "netblock.py", guard / "sitecustomize.py")
    blocked = root / "non-loopback.log"
    path = os.pathsep.join(p for p in (str(guard), os.environ.get("PYTHONPATH", "")) if p)
    platform = Platform(root, {"PYTHONPATH": path, "KLINK_NETBLOCK_LOG": str(blocked)})
    try:
        platform.start()
        yield Served(platform, _seed(platform))
    finally:
        platform.close()
    assert not blocked.exists(), blocked.read_text()


def _seed(platform: Platform) -> str:
    """The records the documents' examples name and one deployment; the deployment's id."""
    _ensure_records(platform)
    platform.call("POST", "/auth/tokens", json={"name": "ci", "role": "deployer"})
    body = {"image": "img-000000000000", "message": "fuzz"}
    return str(platform.call("POST", "/deploy/search/prod", json=body)["id"])


def _ensure_records(platform: Platform) -> None:
    """App ``search``, env ``prod`` (local) and their config repository, so that generated
    requests reach past the 404s. Run before each service: fuzzing the metadata service
    deletes what it is given the names of."""
    records = {
        "/metadata/environments/prod": {"provider": "local"},
        "/metadata/applications/search": {"contact": "s@example.com"},
    }
    with platform.client() as http:
        for path, metadata in records.items():
            if http.get(path).status_code == 404:
                answer = http.put(path, json={"metadata": metadata})
                assert answer.status_code == 201, answer.text
        answer = http.post("/config/repos/search/prod")
        assert answer.status_code in (200, 201), answer.text


def _config(served: Served) -> str:
    """schemathesis.toml: existing names and ids, drawn for about half the path parameters."""
    dictionaries = {
        "apps": ["search"],
        "envs": ["prod"],
        "records": ["search", "prod"],
        "deployments": [served.deployment],
    }
    lines = [f"[dictionaries.{n}]\nvalues = {json.dumps(v)}" for n, v in dictionaries.items()]
    lines.append("[parameters]")
    for parameter, dictionary in (
        ("app", "apps"),
        ("env", "envs"),
        ("name", "records"),
        ("deployment_id", "deployments"),
    ):
        lines.append(f'"path.{parameter}" = {{ dictionary = "{dictionary}", probability = 0.5 }}')
    return "\n".join(lines) + "\n"


def _without_known_defects(service: str, document: dict[str, Any]) -> dict[str, Any]:
    paths = document["paths"]
    for (where, method, path), _reason in KNOWN_DEFECTS.items():
        if where == service:
            del paths[path][method]
            if not paths[path]:
                del paths[path]
    return document


def _operations(document: dict[str, Any]) -> int:
    paths = document.get("paths", {})
    assert isinstance(paths, dict)
    return sum(len(item) for item in paths.values())


def _budgets(platform: Platform) -> dict[str, tuple[int, dict[str, Any]]]:
    documents = {s: httpx.get(f"{platform.url}/{s}/openapi.json").json() for s in SERVICES}
    total = sum(_operations(d) for d in documents.values())
    return {
        s: (max(MIN_SECONDS, round(BUDGET_SECONDS * _operations(d) / total)), d)
        for s, d in documents.items()
    }


@pytest.mark.slow
@pytest.mark.parametrize("service", list(SERVICES))
def test_service_answers_as_documented(served: Served, service: str, tmp_path: Path) -> None:
    platform = served.platform
    _ensure_records(platform)
    seconds, document = _budgets(platform)[service]
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(_without_known_defects(service, document)))
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(served))
    st = Path(sys.executable).with_name("st")
    command = [
        str(st),
        "--config-file",
        str(config),
        "run",
        str(schema),
        "--url",
        f"{platform.url}/{service}",
        "--header",
        f"Authorization: Bearer {platform.token}",
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
