"""Crash-resume of the engine inside ``klink serve``: SIGKILL of the server mid-deployment.

The whole platform runs as processes: ``klink serve`` (APIs and engine, lease of 2 s), the local
cloud daemon it started (which outlives it), instances and HAProxy. A deployment of v2 over v1
runs under a loopback load through HAProxy; the server is killed with SIGKILL twice (while new
instances are being health-checked, and after traffic moved while the old group drains) and
started again each time. The deployment completes with exactly one new group, the old group and
its launch template gone, no instance process outside the group, the plan's actions each done
once in the task rows, and 0 failed requests through the crashes.

The worker-level kill test in ``tests/deploy/`` kills ``klink worker`` at fixed cursors; this
one kills the server process a user runs, with the API going down too.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from klink.cli.loadgen import LoadGenerator
from klink.errors import NotFound
from klink.providers import base
from klink.providers.local import processes
from klink.providers.local.images import ImageStore
from klink.providers.local.provider import LocalProvider
from klink.providers.local.state import State
from tests.e2e.platform import Platform, in_traffic, local_hello
from tests.local.conftest import get_json, make_image

pytestmark = pytest.mark.slow

# Kill points: while new instances are health-checked; then anywhere after traffic moved,
# while the old group is drained and deleted (each window lasts from ms to about a second).
KILL_AT = (
    frozenset({"wait_instances_healthy"}),
    frozenset({"keep_warm", "wait_old_drained", "delete_old_group", "wait_old_group_gone"}),
)


@pytest.fixture(name="platform")
def short_lease_platform(tmp_path: Path) -> Iterator[Platform]:
    """A lease of 2 s, so that a restarted server takes the killed one's deployment soon."""
    running = Platform(tmp_path, {"KLINK_LEASE_SECONDS": "2", "KLINK_ENGINE_WORKERS": "1"})
    try:
        running.start()
        yield running
    finally:
        running.close()
    assert running.non_loopback_connects() == []


def _wait_for_action(platform: Platform, deployment: str, actions: frozenset[str]) -> str:
    deadline = time.monotonic() + 60
    while True:
        record: dict[str, object] = platform.call("GET", f"/deploy/deployments/{deployment}")
        if record["current"] in actions:
            return str(record["current"])
        assert record["status"] in ("preparing", "running"), (sorted(actions), record)
        assert time.monotonic() < deadline, (sorted(actions), record)
        time.sleep(0.02)


def slow_starting_image(home: Path, version: str, tmp: Path) -> base.Image:
    """hello ``version`` whose instances serve 2 s after they start, so that the health gate
    (which probes every instance at once, in milliseconds) is reliably caught waiting."""
    fast = make_image(home, f"{version}-fast", tmp)
    staging = tmp / f"stage-{version}-slow"
    shutil.copytree(ImageStore(home).root(fast.id), staging)
    return ImageStore(home).create(
        staging,
        name=f"hello-{version}",
        start_command=(
            f"sleep 2; KLINK_VERSION={version} exec {shlex.quote(sys.executable)} app/hello.py"
        ),
        tags={base.TAG_APP: "hello", base.TAG_VERSION: version},
    )


def _live_instance_ids(home: Path) -> set[str]:
    state = State.load(home / "local" / "state.json")
    return {
        iid
        for iid, rec in state.instances.items()
        if processes.alive(rec.get("pid"), rec.get("started"))
    }


def test_sigkill_of_klink_serve_mid_deployment_then_restart(
    platform: Platform, cloud: LocalProvider, tmp_path: Path
) -> None:
    params = {"desiredCapacity": 2, "max": 2, "instanceHealthyAttempts": 40}
    balancer = local_hello(platform, params)
    url = f"{balancer}/healthcheck"
    v1 = make_image(platform.home, "1.0", tmp_path)
    v2 = slow_starting_image(platform.home, "2.0", tmp_path)
    first = platform.wait(platform.deploy("hello", "dev", v1.id))
    assert first["status"] == "completed", first["error"]
    old_template = cloud.describe_group("hello-dev-v000").launch_template

    killed_at: list[object] = []
    with LoadGenerator(url, threads=4, max_seconds=120) as load:
        deployment = platform.deploy("hello", "dev", v2.id, "through two crashes")
        for actions in KILL_AT:
            action = _wait_for_action(platform, deployment, actions)
            platform.kill9()
            killed_at.append(action)
            platform.start()
        done = platform.wait(deployment, timeout=90)
        time.sleep(0.3)
    assert len(killed_at) == 2
    assert done["status"] == "completed", (done["error"], platform.log_tail())

    groups = cloud.list_groups(r"hello-dev-v\d{3}")
    assert [g.name for g in groups] == ["hello-dev-v001"]
    group = groups[0]
    assert len(group.instances) == 2
    assert {i.lifecycle_state for i in group.instances} == {base.IN_SERVICE}
    ids = {i.id for i in group.instances}
    assert _live_instance_ids(platform.home) == ids  # no orphan process
    assert in_traffic(cloud, "hello") == {"hello-dev-v001": (100, len(ids), len(ids))}
    with pytest.raises(NotFound):
        cloud.describe_launch_template(str(old_template))
    assert get_json(url)["version"] == "2.0"

    tasks = platform.tasks(deployment)
    seqs = [t["seq"] for t in tasks]
    assert len(seqs) == len(set(seqs))  # one task row per action of the plan
    assert [t["action"] for t in tasks].count("create_group") == 1
    assert {t["status"] for t in tasks} == {"done"}, {t["status"] for t in tasks}
    assert load.result is not None
    sent, failed = load.result.sent, load.result.failed
    print(f"killed at {killed_at}: {sent} requests, {failed} failed")
    assert load.result.failed == 0, load.result.errors
    assert set(load.result.versions) == {"1.0", "2.0"}
