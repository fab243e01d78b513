"""Response times by group from HAProxy's request log: each line counted for the group its slot
serves at that moment, in a histogram Prometheus reads; lines that time nothing left out."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from klink.providers.local import latency
from klink.providers.local.latency import METRIC, ResponseTimes


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def families(text: str) -> dict[tuple[str, str], dict[str, float]]:
    """(proxy, group) → {"le=0.005": cumulative count, …, "sum": s, "count": n}."""
    found: dict[tuple[str, str], dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        assert family.name == METRIC
        assert family.type == "histogram"
        for sample in family.samples:
            key = (sample.labels["proxy"], sample.labels["group"])
            name = sample.name.removeprefix(METRIC + "_")
            if name == "bucket":
                name = f"le={sample.labels['le']}"
            found.setdefault(key, {})[name] = sample.value
    return found


def test_each_response_is_counted_for_the_group_its_slot_serves() -> None:
    slots = {("hello-dev", "s0"): "hello-dev-v001", ("hello-dev", "s1"): "hello-dev-v002"}
    clock = Clock()
    times = ResponseTimes(lambda: dict(slots), clock)
    for line in (b"hello-dev s0 2\n", b"hello-dev s0 4", b"hello-dev s1 120\n"):
        times.observe(line)
    seen = families(times.exposition())
    v1, v2 = seen[("hello-dev", "hello-dev-v001")], seen[("hello-dev", "hello-dev-v002")]
    assert (v1["count"], v1["sum"]) == (2, pytest.approx(0.006))
    assert (v1["le=0.002"], v1["le=0.003"], v1["le=0.005"], v1["le=+Inf"]) == (1, 1, 2, 2)
    assert (v2["le=0.1"], v2["le=0.125"], v2["count"]) == (0, 1, 1)

    # s0 is freed and given to another group: its next answers are that group's, and the first
    # group's histogram stays what it was.
    slots[("hello-dev", "s0")] = "hello-dev-v003"
    clock.now += latency.REFRESH_SECONDS + 0.01
    times.observe(b"hello-dev s0 1")
    seen = families(times.exposition())
    assert seen[("hello-dev", "hello-dev-v003")]["count"] == 1
    assert seen[("hello-dev", "hello-dev-v001")]["count"] == 2


def test_lines_that_time_nothing_are_left_out() -> None:
    times = ResponseTimes(lambda: {("hello-dev", "s0"): "hello-dev-v001"}, Clock())
    for line in (
        b"hello-dev s0 -1",  # no answer from the server
        b"hello-dev <NOSRV> -1",
        b"hello-dev s9 3",  # a free slot or a direct target: no group
        b"other s0 3",
        b"hello-dev s0",
        b"hello-dev s0 3 extra",
        b"hello-dev s0 fast",
        b"\xff\xfe s0 3",
        b"",
    ):
        times.observe(line)
    assert times.exposition() == ""
    times.observe(b"hello-dev s0 3")
    assert families(times.exposition())[("hello-dev", "hello-dev-v001")]["count"] == 1


def test_the_map_is_read_again_within_a_tenth_of_a_second() -> None:
    """A slot given to a group takes requests only once its health checks rise (checks at
    least 0.1 s apart), by which time the map has been read again."""
    slots: dict[tuple[str, str], str] = {}
    clock = Clock()
    times = ResponseTimes(lambda: dict(slots), clock)
    times.observe(b"hello-dev s0 1")  # nobody there yet
    slots[("hello-dev", "s0")] = "hello-dev-v001"
    clock.now += latency.REFRESH_SECONDS + 0.001
    times.observe(b"hello-dev s0 1")
    assert families(times.exposition())[("hello-dev", "hello-dev-v001")]["count"] == 1


def test_a_group_gone_for_an_hour_is_forgotten() -> None:
    slots = {("hello-dev", "s0"): "hello-dev-v001"}
    clock = Clock()
    times = ResponseTimes(lambda: dict(slots), clock)
    times.observe(b"hello-dev s0 1")
    del slots[("hello-dev", "s0")]
    clock.now += latency.FORGET_SECONDS - 1
    assert ("hello-dev", "hello-dev-v001") in families(times.exposition())
    clock.now += 2
    assert times.exposition() == ""


def test_promtool_accepts_the_exposition() -> None:
    """Prometheus's own linter, on a histogram of every bucket and a label that needs escapes."""
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool comes with prometheus: run scripts/test"
    times = ResponseTimes(lambda: {("hello-dev", "s0"): 'odd"name\\'}, Clock())
    for ms in (0, 1, 2, 7, 15, 40, 90, 250, 900, 4000, 60000):
        times.observe(f"hello-dev s0 {ms}".encode())
    text = times.exposition()
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    (only,) = families(text).values()
    assert only["count"] == 11
    assert only["le=30"] == 10  # the minute-long answer only in +Inf
    assert only["le=+Inf"] == 11


def test_the_request_log_reads_datagrams_until_stopped(tmp_path: Path) -> None:
    times = ResponseTimes(lambda: {("hello-dev", "s0"): "hello-dev-v001"})
    path = tmp_path / "log.sock"
    path.write_text("left by an earlier daemon")
    request_log = latency.RequestLog(path, times)
    request_log.start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            for _ in range(50):
                sender.sendto(b"hello-dev s0 3\n", str(path))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            text = times.exposition()
            if text and families(text)[("hello-dev", "hello-dev-v001")]["count"] == 50:
                break
            time.sleep(0.02)
        assert families(times.exposition())[("hello-dev", "hello-dev-v001")]["count"] == 50
    finally:
        started = time.monotonic()
        request_log.stop()
    assert time.monotonic() - started < 1.5
    assert not path.exists()


@pytest.mark.slow
def test_a_real_haproxy_logs_every_answer_to_the_daemon_and_to_a_restarted_one(
    tmp_path: Path,
) -> None:
    """Real daemon and HAProxy: 20 answers through the balancer are 20 in the group's histogram
    at the daemon's /metrics; after the daemon restarts (HAProxy adopted, not restarted) the
    new daemon counts from zero the answers that come after."""
    from klink.providers.local import control, daemon
    from klink.providers.local.provider import LocalProvider
    from tests.analysis.local_cloud import Member, add_members, answers, balancer, local_cloud
    from tests.local.conftest import wait_for

    group = "hello-dev-v001"
    home = tmp_path / "home"

    def counted(url: str) -> float:
        text = httpx.get(f"{url}/metrics", timeout=5).text
        mine = [line for line in text.splitlines() if METRIC in line]
        return families("\n".join(mine) + "\n").get(("hello-dev", group), {}).get("count", 0)

    with local_cloud(home) as cloud:
        port, frontend = balancer(cloud)
        add_members(cloud, home, tmp_path, port, {group: Member("1.0")})
        cloud.set_traffic("hello-dev", {group: 100})
        assert answers(frontend, 20) == {"200 hello from hello 1.0": 20}
        url = str(daemon.running(home)["url"])  # type: ignore[index]
        wait_for(lambda: counted(url) == 20, timeout=5, interval=0.05)
        # Health checks are not requests: the count stays at the answers.
        time.sleep(2.5)
        assert counted(url) == 20

        cloud.close()
        haproxy_pid = cloud_haproxy_pid(home)
        assert control.stop_daemon(home)
        restarted_url = daemon.ensure(home)
        restarted = LocalProvider(home, restarted_url)
        try:
            assert cloud_haproxy_pid(home) == haproxy_pid  # adopted, not restarted
            assert answers(frontend, 7) == {"200 hello from hello 1.0": 7}
            wait_for(lambda: counted(restarted_url) == 7, timeout=5, interval=0.05)
        finally:
            restarted.close()


def cloud_haproxy_pid(home: Path) -> int | None:
    from klink.providers.local.haproxy import HAProxy

    running = HAProxy(home / "local" / "haproxy").pid()
    return running[0] if running else None
