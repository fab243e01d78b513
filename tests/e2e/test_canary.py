"""The canary strategy end to end on the local provider, under load through HAProxy: the whole
platform (``klink serve``, the engine, the local cloud, the daemon's real Prometheus scraping
HAProxy's exporter with each server's group) and ``examples/hello`` told by config to misbehave.

- a version answering 5 % of requests with 500 fails on the critical error rate and is undone
  by itself within two intervals; the requests users saw fail are about weight x 5 % x requests;
- a version 100 ms slower fails on latency and is undone;
- a good version passes every interval and is promoted; its baseline is gone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.canarykit import CanaryRun, TimedLoad, run_canary
from tests.e2e.platform import Platform, local_hello, push_config
from tests.local.conftest import make_image

pytestmark = pytest.mark.slow

WEIGHT, INTERVAL = 25, 20
PARAMS = {
    "strategy": "canary",
    "desiredCapacity": 1,
    "max": 1,
    "instanceHealthyAttempts": 60,
    "canary": {"weight": WEIGHT, "intervals": 2, "intervalSeconds": INTERVAL},
}


@dataclass
class Site:
    platform: Platform
    balancer: str
    props: dict[str, Any]
    image: str  # the version in service (1.0)
    images: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("canary")
    platform = Platform(root)
    try:
        platform.start()
        balancer = local_hello(platform, PARAMS)
        path = "/config/repos/hello/dev/files/application-properties.json"
        props = platform.call("GET", path)["data"]
        image = make_image(platform.home, "1.0", root / "images").id
        first = platform.wait(platform.deploy("hello", "dev", image, "first"), timeout=120)
        assert first["status"] == "completed", first
        yield Site(platform, balancer, dict(props), image, root / "images")
    finally:
        platform.close()
    assert platform.non_loopback_connects() == []


def canary(site: Site, image: str, **faults: float) -> CanaryRun:
    with TimedLoad(f"{site.balancer}/", threads=4) as load:
        run = run_canary(
            site.platform,
            load,
            image,
            {**site.props, **faults},
            weight=WEIGHT,
            error_rate=faults.get("fault.errorRate", 0.0),
        )
    push_config(site.platform, "hello", "dev", {"application-properties.json": site.props})
    return run


def groups(site: Site) -> list[str]:
    boxes = site.platform.call("GET", "/deploy/hello/dev/boxes")
    return sorted(g["name"] for g in boxes.get("groups") or [] if g.get("weight", 0) > 0)


def verdicts(run: CanaryRun) -> dict[str, str]:
    return {m["name"]: m["verdict"] for m in run.canary["reports"][-1]["metrics"]}


def test_a_version_answering_5_percent_errors_is_failed_and_undone_by_itself(site: Site) -> None:
    run = canary(site, site.image, **{"fault.errorRate": 0.05})
    assert run.record["undo"], run.record
    assert run.record["status"] == "completed", run.record
    assert run.canary["verdict"] == "fail"
    assert len(run.canary["reports"]) <= 2  # within two intervals
    assert run.canary["reports"][-1]["criticalFailures"] == ["error-rate"]
    assert run.seconds < 2 * INTERVAL + 15, run.seconds
    print(
        f"\n5% errors at weight {WEIGHT}: undone {run.seconds:.1f} s after the canary took "
        f"traffic; users saw {run.failed} failed of {run.requests} requests, expected "
        f"{run.expected_failed:.1f} (weight x error rate x requests)"
    )
    assert run.requests > 200, "too little load to judge anything"
    assert 0.5 * run.expected_failed - 3 <= run.failed <= 1.5 * run.expected_failed + 3


def test_a_version_100_ms_slower_is_failed_on_latency(site: Site) -> None:
    run = canary(site, site.image, **{"fault.latencyMs": 100})
    assert run.record["undo"], run.record
    assert run.record["status"] == "completed", run.record
    assert run.canary["verdict"] == "fail"
    found = verdicts(run)
    assert found["error-rate"] == "pass"
    assert "fail" in (found["latency-p50"], found["latency-p99"]), found
    assert run.failed == 0


def test_a_good_version_passes_every_interval_and_is_promoted(site: Site) -> None:
    image = make_image(site.platform.home, "2.0", site.images).id
    run = canary(site, image)
    assert run.record["status"] == "completed", run.record
    assert not run.record["undo"], run.record
    assert run.canary["verdict"] == "pass"
    assert [r["verdict"] for r in run.canary["reports"]] == ["pass", "pass"]
    assert run.failed == 0
    new = run.record["newState"]["name"]
    assert groups(site) == [new]  # the canary serves alone; production and baseline are gone
    baseline = run.canary["baseline"]
    boxes = site.platform.call("GET", "/deploy/hello/dev/boxes")
    assert baseline not in [g["name"] for g in boxes.get("groups") or []]
