"""Server weights in-process on a real HAProxy, with small loopback HTTP servers as
instances: a shift is one runtime-API round trip, a member's share does not depend on its
number of servers, a reused server slot is not healthy before its new address passes checks,
and the pure weight function's rounding."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from klink.providers import base
from klink.providers.local.cloud import LocalCloud
from klink.providers.local.haproxy import HAProxy
from klink.providers.local.weights import server_weights
from tests.conftest import free_port
from tests.local.conftest import get_json, wait_for
from tests.local.test_slots import serve


class CountingHAProxy(HAProxy):
    """The real HAProxy boundary, recording each runtime-API round trip."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.round_trips: list[str] = []

    def command(self, line: str) -> str:
        self.round_trips.append(line)
        return super().command(line)


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[LocalCloud]:
    cloud = LocalCloud(tmp_path / "home")
    cloud.lb = CountingHAProxy(cloud.lb.folder)
    yield cloud
    cloud.lb.stop()


def _instance(cloud: LocalCloud, iid: str, ip: str, group: str) -> None:
    cloud.state.groups.setdefault(group, {"deleting": False, "suspended": []})
    cloud.state.instances[iid] = {
        "id": iid,
        "ip": ip,
        "group": group,
        "state": "InService",
        "pid": 1,
    }


def test_a_shift_is_one_round_trip_and_shares_ignore_server_counts(cloud: LocalCloud) -> None:
    port, frontend = free_port(), free_port()
    # Group a has 4 servers, group b 1: a 50/50 split must still be 50/50 by group.
    servers = [serve(f"127.0.0.{20 + i}", port, "a" if i < 4 else "b") for i in range(5)]
    try:
        cloud.ensure_target_group(
            base.TargetGroupSpec(
                name="web",
                port=port,
                health_check_interval_seconds=1,
                healthy_threshold=1,
                frontend_port=frontend,
            )
        )
        for i in range(5):
            _instance(cloud, f"i-{i}", f"127.0.0.{20 + i}", "web-v001" if i < 4 else "web-v002")
        cloud.attach_traffic("web", "web-v001")
        cloud.attach_traffic("web", "web-v002")
        wait_for(lambda: [g.healthy for g in cloud.traffic("web").groups] == [4, 1])
        lb = cloud.lb
        assert isinstance(lb, CountingHAProxy)
        for weights, expected in (
            ({"web-v001": 50, "web-v002": 50}, 0.5),
            ({"web-v001": 90, "web-v002": 10}, 0.9),
            ({"web-v001": 0, "web-v002": 100}, 0.0),
        ):
            lb.round_trips.clear()
            cloud.set_traffic("web", weights)
            assert len(lb.round_trips) == 1, lb.round_trips
            assert lb.round_trips[0].count("set weight web/") == 5
            # Largest weights first: no moment mid-batch with every server at weight 0.
            sent = [int(c.rsplit(" ", 1)[1]) for c in lb.round_trips[0].split("; ")]
            assert sent == sorted(sent, reverse=True), lb.round_trips[0]
            seen = Counter(get_json(f"http://127.0.0.1:{frontend}/")["version"] for _ in range(400))
            assert abs(seen["a"] / 400 - expected) <= 0.05, (weights, seen)
        lb.round_trips.clear()
        cloud.set_traffic("web", {"web-v002": 100})  # already so: nothing sent
        assert lb.round_trips == []
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.mark.parametrize(
    ("weights", "counts", "shares"),
    [
        ({"a": 50, "b": 50}, {"a": 1, "b": 1}, {"a": 0.5, "b": 0.5}),
        ({"a": 50, "b": 50}, {"a": 16, "b": 1}, {"a": 0.5, "b": 0.5}),
        ({"a": 10, "b": 90}, {"a": 16, "b": 16}, {"a": 0.1, "b": 0.9}),
        ({"a": 10, "b": 90}, {"a": 1, "b": 16}, {"a": 0.1, "b": 0.9}),
        ({"a": 100, "b": 0}, {"a": 4, "b": 4}, {"a": 1.0, "b": 0.0}),
        ({"a": 1, "b": 99}, {"a": 4, "b": 4}, {"a": 0.01, "b": 0.99}),
    ],
)
def test_server_weights_keep_each_group_share(
    weights: dict[str, int], counts: dict[str, int], shares: dict[str, float]
) -> None:
    targets = {
        f"i-{g}{n}@{g}": {"draining": False, "member": g}
        for g, c in counts.items()
        for n in range(c)
    }
    targets["i-old"] = {"draining": True, "member": "a"}  # draining: never weighted
    record = {"weights": {"web": 0, **weights}, "targets": targets}
    out = server_weights("web", record)
    assert "i-old" not in out
    assert all(0 <= w <= 256 for w in out.values())
    total = sum(out.values())
    for group, share in shares.items():
        got = sum(w for k, w in out.items() if k.endswith(f"@{group}")) / total
        assert abs(got - share) <= 0.01, (group, got, out)
    # Before any attach, every server is equal (the pre-weights behaviour).
    plain = server_weights(
        "web", {"targets": {"i-1": {"draining": False}, "i-2": {"draining": False}}}
    )
    assert plain == {"i-1": 256, "i-2": 256}


def _drained(cloud: LocalCloud, target_group: str) -> bool:
    cloud.finish_drains()  # what the daemon's reconciler does on each step
    return not cloud.state.target_groups[target_group]["targets"]


def test_a_reused_slot_is_not_healthy_until_its_new_address_passes_checks(
    cloud: LocalCloud,
) -> None:
    port, frontend = free_port(), free_port()
    server = serve("127.0.0.41", port, "a")  # nothing listens on 127.0.0.42
    try:
        cloud.ensure_target_group(
            base.TargetGroupSpec(
                name="web",
                port=port,
                health_check_interval_seconds=1,
                healthy_threshold=2,
                deregistration_delay_seconds=0,
                frontend_port=frontend,
            )
        )
        _instance(cloud, "i-a", "127.0.0.41", "web-v001")
        _instance(cloud, "i-b", "127.0.0.42", "web-v002")
        cloud.attach_traffic("web", "web-v001")
        wait_for(lambda: cloud.traffic("web").get("web-v001").healthy == 1)  # type: ignore[union-attr]
        cloud.detach_traffic("web", "web-v001")
        wait_for(lambda: _drained(cloud, "web"))
        # web-v002 gets the slot s0 that web-v001 left UP: it must not inherit that UP.
        cloud.attach_traffic("web", "web-v002")
        assert cloud.traffic("web").get("web-v002").servers == ("web/s0",)  # type: ignore[union-attr]
        cloud.register_instances("web", ["i-b"])  # and the direct way, on the next slot
        for _ in range(6):
            assert cloud.traffic("web").get("web-v002").healthy == 0  # type: ignore[union-attr]
            assert [t.state for t in cloud.target_health("web")] != ["healthy"]
            time.sleep(0.25)
    finally:
        server.shutdown()
        server.server_close()
