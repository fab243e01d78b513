"""The example service misbehaves exactly as its properties say, and only where they say."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import httpx

from tests.analysis.example_service import running, start


def test_error_rate_answers_exactly_that_share_with_500(tmp_path: Path) -> None:
    with running(tmp_path, **{"fault.errorRate": 0.05}) as (url, _), httpx.Client() as client:
        statuses = [client.get(f"{url}/").status_code for _ in range(200)]
        health = [client.get(f"{url}/healthcheck").status_code for _ in range(50)]
    failed = [i for i, status in enumerate(statuses) if status == 500]
    assert len(failed) == 10  # 5 % of 200, exactly
    assert set(statuses) == {200, 500}
    gaps = {b - a for a, b in itertools.pairwise(failed)}
    assert gaps == {20}  # spread evenly, never in bursts
    assert health == [200] * 50  # the health check never fails


def test_latency_is_added_to_answers_but_not_to_the_health_check(tmp_path: Path) -> None:
    # 500 ms: a margin that a loaded machine does not eat into for a trivial health answer.
    with running(tmp_path, **{"fault.latencyMs": 500}) as (url, _), httpx.Client() as client:
        client.get(f"{url}/")  # warm the connection
        took = []
        for _ in range(3):
            began = time.monotonic()
            assert client.get(f"{url}/").status_code == 200
            took.append(time.monotonic() - began)
        began = time.monotonic()
        assert client.get(f"{url}/healthcheck").status_code == 200
        health_took = time.monotonic() - began
    assert min(took) >= 0.5
    assert health_took < 0.5


def test_a_well_behaved_version_by_default(tmp_path: Path) -> None:
    with running(tmp_path) as (url, _), httpx.Client() as client:
        statuses = {client.get(f"{url}/").status_code for _ in range(100)}
    assert statuses == {200}


def test_a_bad_fault_property_stops_it_with_one_line(tmp_path: Path) -> None:
    process = start(tmp_path, {"service.port": 1, "fault.errorRate": 2}, "1.0")
    assert process.wait(timeout=20) == 2
    assert process.stderr is not None
    err = process.stderr.read().decode().strip()
    process.stderr.close()
    assert err == "hello: bad property: fault.errorRate must be between 0 and 1, not 2.0"
