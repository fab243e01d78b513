"""Several engines on PostgreSQL (issue 19, part 2): ``klink serve`` with KLINK_ENGINE=0 and
three ``klink worker`` processes share many deployments of many apps.

- every action of every deployment runs exactly once per attempt, one worker at a time;
- ``kill -9`` of a worker holding deployments: the others take them over within the lease,
  and each ends with exactly one new group and nothing orphaned;
- a worker cut off from PostgreSQL for longer than its lease (a partition: a proxy that stops
  every byte) acts on none of the deployments taken over meanwhile, and rejoins once the
  network is back;
- deployments on the local provider (real instances, HAProxy) go through the workers as well.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from klink.providers import base
from klink.providers.local import control
from klink.providers.local.provider import LocalProvider
from tests.conftest import free_port
from tests.local.conftest import get_json, make_image
from tests.workers.fleet import LEASE, Fleet, check_exactly_once

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _apps(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{n}" for n in range(count)]


def _held_by(fleet: Fleet, pid: int) -> dict[str, int]:
    return {
        i: r.cursor
        for i, r in fleet.rows().items()
        if r.lease_holder and f":{pid}-" in r.lease_holder and r.status in ("preparing", "running")
    }


def _last_starts(events: list[dict[str, object]], worker_pid: int) -> set[tuple[str, int, int]]:
    last: dict[str, tuple[str, int, int]] = {}
    for e in events:
        if e["event"] == "start" and str(e["worker"]).endswith(f":{worker_pid}"):
            last[str(e["id"])] = (str(e["id"]), int(str(e["seq"])), int(str(e["attempt"])))
    return set(last.values())


def test_every_action_runs_once_per_attempt_across_three_workers(fleet: Fleet) -> None:
    fleet.serve()
    apps = _apps("once", 12)
    fleet.setup(apps)
    fleet.fake.boot_seconds = 1.0  # instances take a second: deployments wait, leases go
    metrics_port = free_port()
    workers = [
        fleet.worker(f"w{n}", KLINK_WORKER_METRICS=f"127.0.0.1:{metrics_port}" if n == 0 else "")
        for n in range(3)
    ]
    ids = fleet.deploy(apps)
    fleet.wait_done(list(ids.values()))
    fleet.check_completed(ids)
    fleet.check_cloud(ids)
    events = check_exactly_once(fleet, ids)
    # The work was shared: every worker ran actions, and deployments moved between workers
    # (a wait lets the lease go; whoever is free takes the next step).
    by_worker = {str(e["worker"]) for e in events if e["event"] == "start"}
    assert len(by_worker) == 3, by_worker
    moved = {
        d
        for d in ids.values()
        if len({e["worker"] for e in events if e["id"] == d and e["event"] == "start"}) > 1
    }
    assert moved
    # Worker 0's /metrics counts exactly what its journal saw, under its own label.
    label = f"{socket.gethostname()[:40]}:{workers[0].pid}"
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    for outcome in ("done", "waiting"):
        journal = sum(
            1
            for e in events
            if e["event"] == "end" and e["worker"] == label and e["outcome"] == outcome
        )
        sample = f'klink_engine_actions_total{{outcome="{outcome}",worker="{label}"}} {journal:.1f}'
        assert sample in text, (sample, [x for x in text.splitlines() if "actions_total" in x])
    claims = sum(1 for e in events if e["event"] == "claim" and e["worker"] == label)
    assert f'klink_engine_claim_latency_seconds_count{{worker="{label}"}} {claims:.1f}' in text
    assert 'klink_deployments{status="completed"} 12.0' in text


def test_kill_9_of_a_worker_holding_deployments_others_take_them_over(fleet: Fleet) -> None:
    fleet.serve()
    apps = _apps("kill", 6)
    fleet.setup(apps)
    fleet.fake.boot_seconds = 1.0  # deployments last a few seconds, waiting between looks
    victim = fleet.worker("dead")
    # The others have a thread free for every deployment, so that what a takeover waits for
    # is the dead lease, not a busy engine.
    others = [fleet.worker(f"w{n}", KLINK_ENGINE_WORKERS="4") for n in range(2)]
    fleet.wait_ready([victim, *others])
    ids = fleet.deploy(apps)
    deadline = time.monotonic() + 60
    while not any(c >= 8 for c in _held_by(fleet, victim.pid).values()):
        assert time.monotonic() < deadline, victim.output()
        time.sleep(0.002)
    victim.kill9()
    killed_at = time.time()
    held = _held_by(fleet, victim.pid)  # its leases, frozen at its death
    expiries = {i: fleet.rows()[i].lease_expires.timestamp() - killed_at for i in held}
    assert held
    fleet.wait_done(list(ids.values()))
    fleet.check_completed(ids)
    fleet.check_cloud(ids)
    events = fleet.journal()
    check_exactly_once(fleet, ids, may_repeat=_last_starts(events, victim.pid))
    for deployment_id in held:
        taken = [
            e
            for e in events
            if e["event"] == "claim" and e["id"] == deployment_id and e["t"] > killed_at
        ]
        assert taken, deployment_id
        first = taken[0]
        assert first["takeover"] is True  # from a dead holder's expired lease
        assert not str(first["worker"]).endswith(f":{victim.pid}")
        assert first["t"] - killed_at <= LEASE + 2.0, (first, expiries)  # the lease + a poll
    del others


def test_a_worker_cut_off_longer_than_its_lease_stops_acting_and_rejoins(fleet: Fleet) -> None:
    fleet.serve()
    first, later = _apps("cut", 9), _apps("back", 6)
    fleet.setup(first + later)
    fleet.fake.boot_seconds = 1.0
    cut = fleet.worker("cut", via_proxy=True)
    proxy = fleet.proxies[0]
    others = [fleet.worker(f"w{n}") for n in range(2)]
    fleet.wait_ready([cut, *others])
    ids = fleet.deploy(first)
    deadline = time.monotonic() + 60
    while not any(c >= 8 for c in _held_by(fleet, cut.pid).values()):
        assert time.monotonic() < deadline, cut.output()
        time.sleep(0.002)
    proxy.freeze()
    frozen_at = time.time()
    held = _held_by(fleet, cut.pid)
    assert held
    # The others take every deployment over while it is cut off: once its lease expired, or,
    # for a row it was writing when cut, once PostgreSQL ended its idle transaction (5 s).
    deadline = time.monotonic() + 20
    while True:
        taken = {
            e["id"]
            for e in fleet.journal()
            if e["event"] == "claim" and e["id"] in held and e["t"] > frozen_at
        }
        if taken == set(held):
            break
        assert time.monotonic() < deadline, (held, taken)
        time.sleep(0.1)
    assert time.time() - frozen_at > LEASE  # cut off for longer than its lease
    time.sleep(LEASE)  # and a little longer, while the others work on its deployments
    proxy.thaw()
    thawed_at = time.time()
    more = fleet.deploy(later)
    fleet.wait_done(list(ids.values()) + list(more.values()))
    everything = {**ids, **more}
    fleet.check_completed(everything)
    fleet.check_cloud(everything)
    events = fleet.journal()
    mine = [e for e in events if str(e["worker"]).endswith(f":{cut.pid}")]
    check_exactly_once(
        fleet, everything, may_repeat=_last_starts([e for e in mine if e["t"] < thawed_at], cut.pid)
    )
    # After the partition, every action it ran followed a claim of its own made after it:
    # nothing ran on a lease it held before being cut off.
    claimed_again: set[str] = set()
    for e in mine:
        if e["t"] <= thawed_at:
            continue
        if e["event"] == "claim":
            claimed_again.add(str(e["id"]))
        elif e["event"] == "start":
            assert e["id"] in claimed_again, e
    # And it rejoined: it ran actions of deployments made after the partition.
    assert any(e["event"] == "start" and e["id"] in set(more.values()) for e in mine), mine[-5:]
    del others


def test_local_provider_deployments_run_through_the_workers_too(
    fleet: Fleet, tmp_path: Path
) -> None:
    """Real instances (processes) behind a real HAProxy, deployed by the workers beside fake
    cloud deployments: hello v1 then v2 on ``dev`` (local provider, the local cloud daemon of
    the shared home), four apps on the fake cloud meanwhile."""
    port, frontend = free_port(), free_port()
    fleet.serve()
    apps = _apps("mix", 4)
    fleet.setup(apps)
    cloud = LocalProvider.from_environment(
        "dev", {"provider": "local"}, SimpleNamespace(home=fleet.home)
    )
    assert isinstance(cloud, LocalProvider)
    try:
        cloud.ensure_target_group(
            base.TargetGroupSpec(
                name="hello-dev",
                port=port,
                health_check_path="/healthcheck",
                health_check_interval_seconds=1,
                healthy_threshold=2,
                unhealthy_threshold=2,
                deregistration_delay_seconds=1,
                frontend_port=frontend,
            )
        )
        defaults = {
            "deployment-params.json": {
                "healthCheckIntervalSeconds": 1,
                "instanceHealthyAttempts": 20,
                "loadBalancerHealthyAttempts": 30,
                "targetGroups": ["hello-dev"],
                "desiredCapacity": 2,
                "max": 2,
                "keepWarmSeconds": 1,
            },
            "application-properties.json": {
                "service.port": port,
                "healthcheck.path": "/healthcheck",
            },
        }
        with fleet.http() as http:
            meta = {"metadata": {"provider": "local", "defaults": defaults}}
            assert http.put("/metadata/environments/dev", json=meta).status_code < 300
            app = {"metadata": {"contact": "team@example.com"}}
            assert http.put("/metadata/applications/hello", json=app).status_code < 300
            assert http.post("/config/repos/hello/dev").status_code < 300
        images = [make_image(fleet.home, v, tmp_path) for v in ("1.0", "2.0")]
        workers = [fleet.worker(f"w{n}") for n in range(3)]
        fleet.wait_ready(workers)
        ids = fleet.deploy(apps)
        local = []
        for image in images:
            with fleet.http() as http:
                answer = http.post(
                    "/deploy/hello/dev", json={"image": image.id, "message": "local"}
                )
                assert answer.status_code == 201, answer.text
                local.append(answer.json()["id"])
            fleet.wait_done([local[-1]], timeout=120)
        fleet.wait_done(list(ids.values()))
        everything = {**ids, "hello-1": local[0], "hello-2": local[1]}
        fleet.check_completed(everything)
        fleet.check_cloud(ids)
        check_exactly_once(fleet, everything)
        assert [g.name for g in cloud.list_groups(r"hello-dev-v\d{3}")] == ["hello-dev-v001"]
        group = cloud.describe_group("hello-dev-v001")
        assert len(group.instances) == 2
        assert get_json(f"http://127.0.0.1:{frontend}/healthcheck")["version"] == "2.0"
        ran_local = {
            str(e["worker"]) for e in fleet.journal() if e["event"] == "start" and e["id"] in local
        }
        assert ran_local  # by the worker processes (journalled), not by the server
    finally:
        for process in fleet.processes:
            process.stop()
        cloud.close()
        control.stop_all(fleet.home, grace=2.0)
