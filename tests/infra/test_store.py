"""Apply locks, history and drift reports on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from klink import store as db
from klink.errors import Conflict
from klink.infra import store
from klink.infra.apply import ApplyResult
from klink.infra.plan import CREATE, Action, Plan

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def _engine(url: str) -> Iterator[Engine]:
    engine = db.create_engine(url)
    db.migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'klink.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    yield from _engine(url)


def test_one_apply_per_app_env_and_a_stale_lock_is_taken_over(engine: Engine) -> None:
    store.acquire(engine, "search", "prod", "a", NOW)
    with pytest.raises(Conflict, match="being applied by a"):
        store.acquire(engine, "search", "prod", "b", NOW + timedelta(minutes=5))
    store.acquire(engine, "search", "poke", "b", NOW)  # another env: independent
    store.acquire(engine, "search", "prod", "c", NOW + store.STALE_LOCK + timedelta(seconds=1))
    store.release(engine, "search", "prod", "a")  # not the holder any more: no effect
    with pytest.raises(Conflict):
        store.acquire(engine, "search", "prod", "d", NOW + timedelta(hours=2))
    store.release(engine, "search", "prod", "c")
    store.acquire(engine, "search", "prod", "d", NOW + timedelta(hours=2))


def test_racing_applies_exactly_one_wins(engine: Engine) -> None:
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def race(i: int) -> None:
        barrier.wait()
        try:
            store.acquire(engine, "search", "prod", f"holder{i}", NOW)
            outcomes.append("won")
        except Conflict:
            outcomes.append("lost")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]


def test_history_and_drift_reports(engine: Engine) -> None:
    action = Action(CREATE, "target_group", "search-web", "create target group search-web")
    plan = Plan("search", "prod", (action,))
    first = store.start_apply(engine, plan, actor="ada", commit="c1", now=NOW)
    store.finish_apply(engine, first, ApplyResult("succeeded", done=(action,)), NOW)
    second = store.start_apply(engine, plan, actor="scheduler", commit="c2", now=NOW)
    entries = store.history(engine, "search", "prod")
    assert [(e["id"], e["actor"], e["status"]) for e in entries] == [
        (second, "scheduler", "running"),
        (first, "ada", "succeeded"),
    ]
    assert entries[1]["result"]["done"] == ["create target group search-web"]
    assert store.history(engine, "search", "poke") == []

    store.record_drift(engine, "search", "prod", now=NOW, commit="c1", plan=plan)
    store.record_drift(
        engine, "other", "prod", now=NOW, commit="c1", plan=Plan("other", "prod", ())
    )
    store.record_drift(engine, "search", "poke", now=NOW, commit=None, plan=None, error="boom")
    reports = store.drift_reports(engine)
    assert [(r["env"], r["app"], r["drifted"], r["error"]) for r in reports] == [
        ("poke", "search", False, "boom"),
        ("prod", "search", True, None),
        ("prod", "other", False, None),
    ]
    # The latest check replaces the previous one.
    store.record_drift(
        engine, "search", "prod", now=NOW, commit="c2", plan=Plan("search", "prod", ())
    )
    assert [r["app"] for r in store.drift_reports(engine, "prod") if r["drifted"]] == []
