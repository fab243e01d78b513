"""A server slot freed by one group and reused by another is counted for the new group only.

HAProxy's counters belong to the slot (``s1``), not to whoever it serves, and are never reset:
when group C takes the slot that B left, the slot's counters go on from B's totals (its 500s
included), and its mean response time starts from B's. On the real local cloud, with the
daemon's Prometheus: B (half its answers 500, each 40 ms late) serves through its slot, leaves
(weight 0, detached, drained, slot freed), C (a good version) is attached, gets the same slot
and all the traffic. Then C's numbers are C's own (its requests, no errors, its own response
times), and B's series has stopped: not one of C's requests is counted for B.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from klink.analysis.factory import source_for
from klink.config.canary import CanaryMetric
from tests.analysis.local_cloud import (
    TARGET_GROUP,
    Member,
    add_members,
    answers,
    balancer,
    local_cloud,
    scraping_prometheus,
    servers_of,
)
from tests.local.conftest import wait_for

pytestmark = pytest.mark.slow

A, B, C = "hello-dev-v001", "hello-dev-v002", "hello-dev-v003"
REQUESTS = 400
ERROR_RATE = CanaryMetric(name="error-rate", builtin="error-rate")
LATENCY = CanaryMetric(name="latency-p50", builtin="latency-p50")
SLOWER = 0.040  # seconds B adds to every answer (within the 30 to 50 ms bucket)


def query(url: str, promql: str, at: datetime) -> dict[tuple[str | None, str], float]:
    """An instant query at ``at``: value by (group, server)."""
    answer = httpx.get(
        f"{url}/api/v1/query", params={"query": promql, "time": f"{at.timestamp():.3f}"}, timeout=5
    ).json()
    assert answer["status"] == "success", answer
    return {
        (r["metric"].get("group"), r["metric"].get("server", "")): float(r["value"][1])
        for r in answer["data"]["result"]
    }


def test_a_reused_slot_is_counted_for_its_new_group_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with local_cloud(home) as cloud:
        port, frontend = balancer(cloud)
        add_members(
            cloud,
            home,
            tmp_path,
            port,
            {
                A: Member("1.0"),
                B: Member("2.0", properties={"fault.errorRate": 0.5, "fault.latencyMs": 40}),
            },
        )
        (slot_b,) = servers_of(cloud, B)
        endpoint = scraping_prometheus(cloud, home)
        source = source_for(cloud)

        # B serves alone for a while: half of it fails.
        cloud.set_traffic(TARGET_GROUP, {A: 0, B: 100})
        b_began = datetime.now(UTC)
        seen = answers(frontend, REQUESTS, pause=0.01)
        b_served = datetime.now(UTC)
        assert seen["500 failing on purpose, 2.0"] == REQUESTS // 2
        time.sleep(3)  # scraped
        b_ended = datetime.now(UTC)

        # B leaves: to weight 0, detached, drained, and its slot freed.
        cloud.set_traffic(TARGET_GROUP, {A: 100, B: 0})
        cloud.detach_traffic(TARGET_GROUP, B)
        wait_for(lambda: cloud.traffic(TARGET_GROUP).get(B) is None, timeout=20, interval=0.2)

        # C joins and is given the slot B left (the lowest free one).
        add_members(cloud, home, tmp_path, port, {C: Member("3.0")})
        assert servers_of(cloud, C) == (slot_b,)
        server = slot_b.split("/")[1]
        time.sleep(2)  # C's first scrapes: its series begins
        cloud.set_traffic(TARGET_GROUP, {A: 0, C: 100})
        c_began = datetime.now(UTC)
        seen = answers(frontend, REQUESTS, pause=0.01)
        c_served = datetime.now(UTC)
        assert seen == {"200 hello from hello 3.0": REQUESTS}
        time.sleep(3)
        c_ended = datetime.now(UTC)

        url, since = endpoint.url, f"{round((c_ended - c_began).total_seconds()) + 2}s"
        totals = "sum by (group, server) (haproxy_server_http_responses_total)"
        # The slot's counter went on from B's totals (C's series begins at B's count) ...
        first, last = query(url, totals, c_began), query(url, totals, c_ended)
        assert first[(C, server)] == REQUESTS
        assert last[(C, server)] - first[(C, server)] == REQUESTS
        # ... yet C is charged only what it served (increase() extrapolates to the window's
        # edges by up to a scrape, never by the count it started from), and B nothing more.
        increase = f"increase(haproxy_server_http_responses_total[{since}])"
        served = query(url, f"sum by (group, server) ({increase})", c_ended)
        assert REQUESTS <= served[(C, server)] <= 1.25 * REQUESTS
        assert (B, server) not in served  # B's series ended with B: no sample in C's window
        before = query(url, totals, b_ended)
        assert before[(B, server)] == pytest.approx(REQUESTS, rel=0.1)
        assert (C, server) not in before

        # The canary's builtin: B's error rate is B's, C's is C's, on the same slot. Each value
        # is a rate over the step before it, so the windows are those while requests went on
        # (a step that ends after them holds only a few, and its ratio is coarse).
        step = 2.0
        b_window = (b_began + timedelta(seconds=2), b_served)
        c_window = (c_began + timedelta(seconds=2), c_served)
        b_rates = source.series(ERROR_RATE, B, *b_window, step)
        c_rates = source.series(ERROR_RATE, C, *c_window, step)
        b_known = [r for r in b_rates if r == r]  # NaN: a step without requests
        c_known = [r for r in c_rates if r == r]
        assert b_known, b_rates
        assert all(r == pytest.approx(0.5, abs=0.1) for r in b_known), b_rates
        assert c_known, c_rates
        assert all(r == 0.0 for r in c_known), c_rates

        # The latency builtin: B's times are B's, and C's are C's own from its first answer,
        # though HAProxy's mean for the slot starts from B's (what it measured before).
        b_times = source.series(LATENCY, B, *b_window, step)
        c_times = source.series(LATENCY, C, *c_window, step)
        b_known = [t for t in b_times if t == t]
        c_known = [t for t in c_times if t == t]
        assert b_known, b_times
        assert c_known, c_times
        # (A busy machine adds its own milliseconds, and a percentile is read within a bucket.)
        assert all(SLOWER - 0.005 <= t <= 2 * SLOWER for t in b_known), b_times
        assert all(t < SLOWER / 2 for t in c_known), c_times
        slot_mean = f"max_over_time(haproxy_server_response_time_average_seconds[{since}])"
        assert query(url, slot_mean, c_ended)[(C, server)] >= SLOWER / 2  # B's, at C's start
