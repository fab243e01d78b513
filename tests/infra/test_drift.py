"""Drift scheduling: each environment on its own interval, on/off from its metadata."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from klink.infra import store
from klink.infra.drift import DriftScheduler, run_due
from tests.conftest import LiveServer

pytestmark = pytest.mark.slow


def test_each_environment_is_checked_on_its_own_interval(live_server: LiveServer) -> None:
    runtime = live_server.runtime
    with live_server.client() as http:
        for name, infra in (
            ("dev", {"drift": False}),
            ("poke", {}),
            ("prod", {"driftIntervalMinutes": 30}),
        ):
            body = {"metadata": {"provider": "local", "infra": infra}}
            assert http.put(f"/metadata/environments/{name}", json=body).status_code == 201
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    runtime.clock = lambda: now[0]

    assert run_due(runtime) == ["poke", "prod"]  # never checked: due; dev is off
    assert run_due(runtime) == []
    now[0] += timedelta(minutes=31)
    assert run_due(runtime) == ["prod"]
    now[0] += timedelta(minutes=90)
    assert run_due(runtime) == ["poke", "prod"]  # 2 h 1 min since poke's first check
    assert store.last_run(runtime.engine, "poke") == now[0]
    assert run_due(runtime, force=True, only="dev") == ["dev"]


def test_the_scheduler_thread_ticks_until_stopped(live_server: LiveServer) -> None:
    ticks: list[float] = []

    def wait(event: threading.Event, seconds: float) -> bool:
        ticks.append(seconds)
        if len(ticks) > 3:
            return event.wait(5)  # until stop() sets it
        return False

    scheduler = DriftScheduler(live_server.runtime, tick=42.0, wait=wait)
    scheduler.start()
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while scheduler.runs < 3 and datetime.now(UTC) < deadline:
        threading.Event().wait(0.01)
    scheduler.stop()
    assert scheduler.runs == 3
    assert ticks[:4] == [42.0] * 4
    assert scheduler.thread is not None
    assert not scheduler.thread.is_alive()
