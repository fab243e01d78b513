"""Target groups on a real HAProxy: registration, health, drain, and a swap under load."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from klink.cli.loadgen import LoadGenerator
from klink.errors import Conflict
from klink.providers import base
from klink.providers.local.provider import LocalProvider
from tests.conftest import free_port
from tests.local.conftest import (
    get_json,
    group_with,
    in_service,
    make_image,
    try_get_json,
    wait_for,
)

pytestmark = pytest.mark.slow


def _target_group(cloud: LocalProvider, name: str, port: int) -> tuple[base.TargetGroup, int]:
    frontend = free_port()
    tg = cloud.ensure_target_group(
        base.TargetGroupSpec(
            name=name,
            port=port,
            health_check_path="/healthcheck",
            health_check_interval_seconds=1,
            healthy_threshold=2,
            unhealthy_threshold=2,
            deregistration_delay_seconds=5,
            frontend_port=frontend,
        )
    )
    return tg, frontend


def _states(cloud: LocalProvider, tg: str) -> dict[str, str]:
    return {t.instance_id: t.state for t in cloud.target_health(tg)}


def test_group_registers_and_health_goes_healthy(
    cloud: LocalProvider, hello_image: base.Image, home: Path
) -> None:
    port = free_port()
    _tg, frontend = _target_group(cloud, "hello-dev", port)
    group_with(cloud, hello_image, "hello-dev-v000", 2, port=port, target_groups=("hello-dev",))
    instances = wait_for(lambda: in_service(cloud, "hello-dev-v000", 2))
    ids = {i.id for i in instances}
    first = _states(cloud, "hello-dev")
    assert set(first) == ids
    assert set(first.values()) <= {"initial", "healthy"}
    wait_for(lambda: set(_states(cloud, "hello-dev").values()) == {"healthy"})
    assert get_json(f"http://127.0.0.1:{frontend}/healthcheck")["version"] == "1.0"

    # A second target group reloads HAProxy; the first one's servers survive it, healthy.
    _target_group(cloud, "other-dev", free_port())
    assert _states(cloud, "hello-dev") == dict.fromkeys(ids, "healthy")
    assert get_json(f"http://127.0.0.1:{frontend}/healthcheck")["version"] == "1.0"
    with pytest.raises(Conflict):
        cloud.ensure_target_group(
            base.TargetGroupSpec(name="third", port=port, frontend_port=frontend)
        )
    assert [t.name for t in cloud.list_target_groups()] == ["hello-dev", "other-dev"]

    # HAProxy dies: the daemon starts it again, with its servers.
    import os
    import signal

    from klink.providers.local.haproxy import HAProxy

    lb = HAProxy(home / "local" / "haproxy")
    pid = lb.pid()
    assert pid is not None
    os.kill(pid[0], signal.SIGKILL)
    wait_for(lambda: lb.pid() not in (None, pid))
    wait_for(lambda: try_get_json(f"http://127.0.0.1:{frontend}/healthcheck"))
    assert set(_states(cloud, "hello-dev")) == ids


def test_add_to_load_balancer_suspended_registers_nothing(
    cloud: LocalProvider, hello_image: base.Image
) -> None:
    port = free_port()
    _target_group(cloud, "hello-dev", port)
    group_with(
        cloud,
        hello_image,
        "hello-dev-v001",
        1,
        port=port,
        target_groups=("hello-dev",),
        suspended_processes=("AddToLoadBalancer",),
    )
    [instance] = wait_for(lambda: in_service(cloud, "hello-dev-v001", 1))
    assert cloud.target_health("hello-dev") == []
    cloud.register_instances("hello-dev", [instance.id])
    cloud.register_instances("hello-dev", [instance.id])  # idempotent
    assert [t.instance_id for t in cloud.target_health("hello-dev")] == [instance.id]


def test_swap_all_servers_under_load_fails_no_request(
    cloud: LocalProvider, home: Path, hello_image: base.Image, tmp_path: Path
) -> None:
    port = free_port()
    _tg, frontend = _target_group(cloud, "hello-dev", port)
    group_with(cloud, hello_image, "hello-dev-v001", 2, port=port, target_groups=("hello-dev",))
    old = wait_for(lambda: in_service(cloud, "hello-dev-v001", 2))
    wait_for(lambda: set(_states(cloud, "hello-dev").values()) == {"healthy"})
    new_image = make_image(home, "2.0", tmp_path)
    group_with(
        cloud,
        new_image,
        "hello-dev-v002",
        2,
        port=port,
        suspended_processes=("AddToLoadBalancer",),
    )
    new = wait_for(lambda: in_service(cloud, "hello-dev-v002", 2))
    wait_for(lambda: all(try_get_json(f"http://{i.private_ip}:{port}/healthcheck") for i in new))
    url = f"http://127.0.0.1:{frontend}/healthcheck"
    with LoadGenerator(url, threads=4, max_seconds=20) as load:
        time.sleep(0.5)
        cloud.register_instances("hello-dev", [i.id for i in new])
        wait_for(lambda: all(_states(cloud, "hello-dev").get(i.id) == "healthy" for i in new))
        cloud.deregister_instances("hello-dev", [i.id for i in old])
        states = _states(cloud, "hello-dev")
        assert {states.get(i.id) for i in old} <= {"draining", None}
        wait_for(lambda: set(_states(cloud, "hello-dev")) == {i.id for i in new})
        time.sleep(0.5)
    result = load.result
    assert result is not None
    print(f"swap under load: {result.sent} requests, {result.failed} failed, {result.rate:.0f}/s")
    assert result.sent > 100
    assert result.failed == 0, result.errors
    assert set(result.versions) == {"1.0", "2.0"}
    # Old instances may now stop: traffic is entirely on the new ones.
    cloud.delete_group("hello-dev-v001")
    wait_for(lambda: not cloud.group_exists("hello-dev-v001"))
    assert get_json(url)["version"] == "2.0"


def test_unhealthy_target_and_delete_target_group(
    cloud: LocalProvider, hello_image: base.Image
) -> None:
    port = free_port()
    # The health check path answers 404: the target never becomes healthy.
    cloud.ensure_target_group(
        base.TargetGroupSpec(
            name="broken",
            port=port,
            health_check_path="/missing",
            health_check_interval_seconds=1,
            frontend_port=free_port(),
        )
    )
    group_with(cloud, hello_image, "hello-dev-v005", 1, port=port, target_groups=("broken",))
    wait_for(lambda: in_service(cloud, "hello-dev-v005", 1))
    wait_for(lambda: set(_states(cloud, "broken").values()) == {"unhealthy"})
    cloud.delete_target_group("broken")
    cloud.delete_target_group("broken")
    assert cloud.list_target_groups() == []


def test_deleting_a_group_drains_requests_in_flight_before_stopping(
    cloud: LocalProvider, hello_image: base.Image, home: Path
) -> None:
    import json
    import threading
    import urllib.request

    from klink.providers.local import processes

    port = free_port()
    _tg, frontend = _target_group(cloud, "hello-dev", port)
    group_with(cloud, hello_image, "hello-dev-v003", 1, port=port, target_groups=("hello-dev",))
    [instance] = wait_for(lambda: in_service(cloud, "hello-dev-v003", 1))
    wait_for(lambda: _states(cloud, "hello-dev") == {instance.id: "healthy"})
    rec = json.loads((home / "local" / "state.json").read_text())["instances"][instance.id]
    answers: list[str] = []

    def slow_request() -> None:
        url = f"http://127.0.0.1:{frontend}/sleep?ms=1500"
        with urllib.request.urlopen(url, timeout=10) as response:
            answers.append(response.read().decode())

    worker = threading.Thread(target=slow_request)
    worker.start()
    wait_for(lambda: cloud.target_health("hello-dev") and _sessions(home, instance.id) > 0)
    cloud.delete_group("hello-dev-v003")
    wait_for(lambda: _states(cloud, "hello-dev") == {instance.id: "draining"})
    # While its request is in flight the instance is draining, not stopped.
    time.sleep(0.5)
    assert processes.alive(rec["pid"], rec["started"])
    assert cloud.describe_group("hello-dev-v003").instances[0].lifecycle_state == "Terminating"
    worker.join(timeout=10)
    assert answers == ["slept, 1.0\n"]
    wait_for(lambda: not cloud.group_exists("hello-dev-v003"))
    assert cloud.target_health("hello-dev") == []
    assert not processes.alive(rec["pid"], rec["started"])


def test_drain_is_bounded_by_the_deregistration_delay(
    cloud: LocalProvider, hello_image: base.Image, home: Path
) -> None:
    import threading
    import urllib.request

    port = free_port()
    frontend = free_port()
    cloud.ensure_target_group(
        base.TargetGroupSpec(
            name="hello-dev",
            port=port,
            health_check_interval_seconds=1,
            deregistration_delay_seconds=1,
            frontend_port=frontend,
        )
    )
    group_with(cloud, hello_image, "hello-dev-v004", 1, port=port, target_groups=("hello-dev",))
    [instance] = wait_for(lambda: in_service(cloud, "hello-dev-v004", 1))
    wait_for(lambda: _states(cloud, "hello-dev") == {instance.id: "healthy"})

    def very_slow_request() -> None:
        url = f"http://127.0.0.1:{frontend}/sleep?ms=8000"
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=10).close()

    worker = threading.Thread(target=very_slow_request)
    worker.start()
    wait_for(lambda: _sessions(home, instance.id) > 0)
    started = time.monotonic()
    cloud.deregister_instances("hello-dev", [instance.id])
    wait_for(lambda: cloud.target_health("hello-dev") == [], timeout=5)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 4.0
    worker.join(timeout=15)


def _sessions(home: Path, instance_id: str) -> int:
    """Current sessions of the HAProxy server slot that serves ``instance_id``."""
    import json

    from klink.providers.local.haproxy import HAProxy, slot_name

    state = json.loads((home / "local" / "state.json").read_text())
    target = state["target_groups"]["hello-dev"]["targets"].get(instance_id)
    if target is None:
        return 0
    stats = HAProxy(home / "local" / "haproxy").server_stats("hello-dev")
    row = stats.get(slot_name(target["slot"]))
    return int(row["scur"] or 0) if row else 0
