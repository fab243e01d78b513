"""Traffic by weight on the local cloud: real daemon, real HAProxy, real ``hello`` instances.

Two groups (1.0 and 2.0) behind one balancer; every claim is counted from answers through
HAProxy's frontend: all from one version at {a: 100, b: 0}, shares within 5 points of the
weights over >= 1,000 requests, 0 failed requests across the shifts under load, weight-0
servers health-checked, weights kept by a restarted HAProxy and a restarted daemon.
"""

from __future__ import annotations

import http.client
import os
import signal
from collections import Counter
from pathlib import Path

import pytest

from klink.cli.loadgen import LoadGenerator
from klink.errors import Conflict, InvalidInput, NotFound
from klink.providers import base
from klink.providers.local import control
from klink.providers.local.haproxy import HAProxy
from klink.providers.local.provider import LocalProvider
from tests.conftest import free_port
from tests.local.conftest import group_with, in_service, make_image, wait_for

pytestmark = pytest.mark.slow


def answers(frontend: int, count: int) -> Counter[str]:
    """``count`` requests on one keep-alive connection through HAProxy: versions answering."""
    import json

    seen: Counter[str] = Counter()
    connection = http.client.HTTPConnection("127.0.0.1", frontend, timeout=10)
    try:
        for _ in range(count):
            connection.request("GET", "/healthcheck")
            response = connection.getresponse()
            body = response.read()
            seen[
                json.loads(body)["version"] if response.status == 200 else str(response.status)
            ] += 1
    finally:
        connection.close()
    return seen


def balancer(cloud: LocalProvider, port: int) -> int:
    frontend = free_port()
    cloud.ensure_target_group(
        base.TargetGroupSpec(
            name="hello-dev",
            port=port,
            health_check_interval_seconds=1,
            healthy_threshold=2,
            unhealthy_threshold=2,
            deregistration_delay_seconds=2,
            frontend_port=frontend,
        )
    )
    return frontend


def two_groups(
    cloud: LocalProvider, home: Path, tmp_path: Path, size: int = 2
) -> tuple[int, str, str]:
    """Groups a (1.0) and b (2.0), attached at weight 0 and healthy through HAProxy."""
    port = free_port()
    frontend = balancer(cloud, port)
    a, b = "hello-dev-v001", "hello-dev-v002"
    group_with(cloud, make_image(home, "1.0", tmp_path), a, size, port=port)
    group_with(cloud, make_image(home, "2.0", tmp_path), b, size, port=port)
    wait_for(lambda: in_service(cloud, a, size) and in_service(cloud, b, size), timeout=30)
    cloud.attach_traffic("hello-dev", a)
    cloud.attach_traffic("hello-dev", b)
    cloud.attach_traffic("hello-dev", b)  # idempotent
    state = cloud.traffic("hello-dev")
    assert state.weights() == {a: 0, b: 0}
    assert (state.get(a).registered, state.get(b).registered) == (size, size)  # type: ignore[union-attr]
    # Health checks run on weight-0 servers: both members become healthy with no traffic.
    wait_for(lambda: _healthy(cloud) == {a: size, b: size}, timeout=20)
    return frontend, a, b


def _healthy(cloud: LocalProvider) -> dict[str, int]:
    return {g.name: g.healthy for g in cloud.traffic("hello-dev").groups}


def test_weights_route_answers_and_shifts_fail_no_request(
    cloud: LocalProvider, home: Path, tmp_path: Path
) -> None:
    frontend, a, b = two_groups(cloud, home, tmp_path)
    with pytest.raises(InvalidInput):  # nothing may be left with a weight
        cloud.set_traffic("hello-dev", {a: 0})
    cloud.set_traffic("hello-dev", {a: 100, b: 0})
    url = f"http://127.0.0.1:{frontend}/healthcheck"
    with LoadGenerator(url, threads=3, max_seconds=60) as load:
        assert answers(frontend, 300) == {"1.0": 300}

        cloud.set_traffic("hello-dev", {a: 50, b: 50})
        split = answers(frontend, 1200)
        assert sum(split.values()) == 1200
        assert abs(split["1.0"] / 1200 - 0.5) <= 0.05, split
        assert abs(split["2.0"] / 1200 - 0.5) <= 0.05, split

        cloud.set_traffic("hello-dev", {a: 10, b: 90})
        split = answers(frontend, 1000)
        assert abs(split["2.0"] / 1000 - 0.9) <= 0.05, split

        cloud.set_traffic("hello-dev", {a: 0, b: 100})
        assert answers(frontend, 300) == {"2.0": 300}
        cloud.set_traffic("hello-dev", {a: 100, b: 0})  # an undo while warm: one call
        assert answers(frontend, 300) == {"1.0": 300}
    result = load.result
    assert result is not None
    print(f"shifts under load: {result.sent} requests, {result.failed} failed")
    assert result.sent > 500
    assert result.failed == 0, result.errors
    state = cloud.traffic("hello-dev")
    assert state.weights() == {a: 100, b: 0}
    assert state.share(a) == 1.0
    # Each member names its own servers, so a server's metrics can be told apart by group.
    servers_a, servers_b = state.get(a).servers, state.get(b).servers  # type: ignore[union-attr]
    assert len(servers_a) == len(servers_b) == 2
    assert not set(servers_a) & set(servers_b)
    assert all(s.startswith("hello-dev/s") for s in servers_a + servers_b)
    # The daemon shows the same as plain JSON; a missing target group is a 404 naming it.
    import json
    import urllib.error
    import urllib.request

    url = json.loads((home / "local" / "daemon.json").read_text())["url"]
    with urllib.request.urlopen(f"{url}/traffic/hello-dev", timeout=5) as response:
        shown = json.loads(response.read())
    assert {g["name"]: (g["weight"], g["servers"]) for g in shown["groups"]} == {
        a: (100, list(servers_a)),
        b: (0, list(servers_b)),
    }
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{url}/traffic/nope", timeout=5)
    assert missing.value.code == 404
    assert json.loads(missing.value.read())["error"]["field"] == "target_group"


def test_weights_survive_haproxy_and_daemon_restarts(
    cloud: LocalProvider, home: Path, tmp_path: Path
) -> None:
    frontend, a, b = two_groups(cloud, home, tmp_path, size=1)
    cloud.set_traffic("hello-dev", {a: 30, b: 70})
    lb = HAProxy(home / "local" / "haproxy")
    config = lb.config_path.read_text()
    # A reload (a new target group) renders the weights into the config.
    balancer_port = free_port()
    cloud.ensure_target_group(
        base.TargetGroupSpec(name="other-dev", port=balancer_port, frontend_port=free_port())
    )
    config = lb.config_path.read_text()
    assert f"group={a}" in config
    assert f"group={b}" in config
    pid = lb.pid()
    assert pid is not None
    os.kill(pid[0], signal.SIGKILL)  # HAProxy dies; the daemon starts it from its config
    wait_for(lambda: lb.pid() not in (None, pid))
    wait_for(lambda: _healthy(cloud) == {a: 1, b: 1}, timeout=20)
    split = answers(frontend, 1000)
    assert abs(split["2.0"] / 1000 - 0.7) <= 0.05, split

    assert control.stop_daemon(home)  # the daemon restarts; instances and HAProxy live on
    again = LocalProvider.from_environment(
        "dev", {"provider": "local"}, type("S", (), {"home": home})()
    )
    try:
        assert again.traffic("hello-dev").weights() == {a: 30, b: 70}
    finally:
        again.close()
    split = answers(frontend, 1000)
    assert abs(split["2.0"] / 1000 - 0.7) <= 0.05, split


def test_detach_drains_a_member_and_direct_registrations_move_to_weights(
    cloud: LocalProvider, home: Path, tmp_path: Path
) -> None:
    port = free_port()
    frontend = balancer(cloud, port)
    old, new = "hello-dev-v001", "hello-dev-v002"
    # The old group is registered the pre-weights way: the direct member, named hello-dev.
    group_with(
        cloud, make_image(home, "1.0", tmp_path), old, 1, port=port, target_groups=("hello-dev",)
    )
    group_with(cloud, make_image(home, "2.0", tmp_path), new, 1, port=port)
    wait_for(lambda: in_service(cloud, old, 1) and in_service(cloud, new, 1), timeout=30)
    wait_for(lambda: _healthy(cloud) == {"hello-dev": 1}, timeout=20)
    direct = cloud.traffic("hello-dev").get("hello-dev")
    assert direct is not None
    assert (direct.direct, direct.weight) == (True, 100)
    cloud.attach_traffic("hello-dev", new)  # joins at 0: still every answer from 1.0
    assert answers(frontend, 100) == {"1.0": 100}
    wait_for(lambda: _healthy(cloud) == {"hello-dev": 1, new: 1}, timeout=20)
    url = f"http://127.0.0.1:{frontend}/healthcheck"
    with LoadGenerator(url, threads=3, max_seconds=60) as load:
        cloud.set_traffic("hello-dev", {new: 100, "hello-dev": 0})
        assert answers(frontend, 200) == {"2.0": 200}
        with pytest.raises(Conflict) as caught:
            cloud.detach_traffic("hello-dev", new)  # it carries traffic
        assert caught.value.field == "weights"
        with pytest.raises(InvalidInput):
            cloud.detach_traffic("hello-dev", "hello-dev")
        cloud.set_traffic("hello-dev", {"hello-dev": 100, new: 0})
        cloud.detach_traffic("hello-dev", new)
        cloud.detach_traffic("hello-dev", new)  # idempotent
        leaving = cloud.traffic("hello-dev").get(new)
        assert leaving is None or (leaving.registered, leaving.weight) == (0, 0)
        wait_for(lambda: cloud.traffic("hello-dev").get(new) is None, timeout=10)
        assert answers(frontend, 200) == {"1.0": 200}
        with pytest.raises(InvalidInput) as caught_weights:
            cloud.set_traffic("hello-dev", {new: 10})  # no member any more
        assert caught_weights.value.field == "weights"
    result = load.result
    assert result is not None
    assert result.failed == 0, result.errors
    # The direct member is what target_health reports; a member's servers are not in it.
    assert [t.state for t in cloud.target_health("hello-dev")] == ["healthy"]


def test_attach_registers_later_launches_and_refuses_bad_input(
    cloud: LocalProvider, home: Path, tmp_path: Path
) -> None:
    port = free_port()
    balancer(cloud, port)
    group = "hello-dev-v003"
    group_with(cloud, make_image(home, "3.0", tmp_path), group, 1, port=port)
    wait_for(lambda: in_service(cloud, group, 1), timeout=30)
    cloud.attach_traffic("hello-dev", group)
    cloud.resize_group(group, min_size=0, max_size=10, desired_capacity=3)
    wait_for(lambda: cloud.traffic("hello-dev").get(group).registered == 3, timeout=30)  # type: ignore[union-attr]
    for call, field in (
        (lambda: cloud.attach_traffic("nope", group), "target_group"),
        (lambda: cloud.attach_traffic("hello-dev", "hello-dev-v999"), "group"),
        (lambda: cloud.traffic("nope"), "target_group"),
    ):
        with pytest.raises(NotFound) as caught:
            call()
        assert caught.value.field == field
    for weights in ({group: 101}, {group: -1}, {"hello-dev-v999": 10}, {}, {group: "50"}):
        with pytest.raises(InvalidInput) as bad:
            cloud.set_traffic("hello-dev", weights)  # type: ignore[arg-type]
        assert bad.value.field == "weights"
    cloud.set_traffic("hello-dev", {group: 100})
    assert cloud.traffic("hello-dev").weights() == {group: 100}
    # A deleted group drains, then leaves the balancer.
    cloud.delete_group(group)
    wait_for(lambda: not cloud.group_exists(group), timeout=30)
    assert cloud.traffic("hello-dev").get(group) is None
