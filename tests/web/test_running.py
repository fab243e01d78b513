"""``history.running`` (behind ``GET /deploy/running``, the overview's one read) on SQLite and
PostgreSQL: the newest completed deployment per app+env, the previous state for an undo, newer
failed or running deployments ignored, the JSON fields read out of the states by SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from klink import store
from klink.deploy import history
from klink.deploy.tables import deployments

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def state(group: str, image: str, version: str, desired: int) -> dict[str, Any]:
    """A group state as the engine stores it (``GroupState.to_json``), the fields shown."""
    return {
        "name": group,
        "launch": {"name": f"{group}-lt", "image_id": image, "user_data": "#cloud-config\n"},
        "desired_capacity": desired,
        "image_id": image,
        "version": version,
        "config_commit": "c" * 40,
    }


def row(ident: str, app: str, env: str, minute: int, status: str, **extra: Any) -> dict[str, Any]:
    at = T0 + timedelta(minutes=minute)
    return {
        "id": ident, "app": app, "env": env, "kind": "deploy", "image": f"img-{ident}",
        "commit": None, "config_commit": "d" * 40, "user": f"u{ident}", "message": "m",
        "status": status, "phase": "deploy", "undo": False, "previous_state": None,
        "new_state": None, "facts": {}, "plan": [], "cursor": 0, "error": None,
        "control": None, "created_at": at, "updated_at": at,
        "finished_at": at + timedelta(seconds=30) if status == "completed" else None,
        **extra,
    }  # fmt: skip


S = state
CASES = [
    row("a1", "search", "prod", 1, "completed", new_state=S("search-prod-v000", "img-1", "1.0", 2)),
    row("a2", "search", "prod", 2, "completed", new_state=S("search-prod-v001", "img-2", "2.0", 3)),
    row("a3", "search", "prod", 3, "failed", new_state=S("search-prod-v002", "img-3", "3.0", 3)),
    row("a4", "search", "prod", 4, "running", new_state=S("search-prod-v003", "img-4", "4.0", 3)),
    row("a5", "search", "prod", 5, "completed", kind="resize"),
    row("b1", "search", "dev", 1, "completed", new_state=S("search-dev-v000", "img-5", "5.0", 1)),
    row("b2", "search", "dev", 2, "completed", undo=True,
        new_state=S("search-dev-v001", "img-6", "6.0", 1),
        previous_state=S("search-dev-v000", "img-5", "5.0", 1)),
    row("c1", "mail", "prod", 1, "completed", undo=True,
        new_state=S("mail-prod-v000", "img-7", "7.0", 1)),
    row("d1", "maps", "prod", 1, "cancelled"),
]  # fmt: skip


def check(engine: Engine) -> None:
    store.migrate(engine)
    with engine.begin() as conn:
        conn.execute(deployments.insert(), CASES)
    found = {(r["app"], r["env"]): r for r in history.running(engine)}
    assert set(found) == {("search", "prod"), ("search", "dev"), ("mail", "prod")}
    # The newest completed, not the failed or running one, nor a resize of its group.
    prod = found[("search", "prod")]
    assert prod["deployment"] == "a2"
    assert (prod["image"], prod["version"], prod["group"], prod["desired"]) == (
        "img-2",
        "2.0",
        "search-prod-v001",
        3,
    )
    assert prod["commit"] == "c" * 40
    assert prod["user"] == "ua2"
    assert prod["since"].startswith("2026-05-01T00:02:30")
    dev = found[("search", "dev")]  # undone: what runs is its previous state
    assert (dev["deployment"], dev["undo"], dev["image"], dev["version"]) == (
        "b2",
        True,
        "img-5",
        "5.0",
    )
    mail = found[("mail", "prod")]  # the first deployment undone: nothing of it runs
    assert (mail["image"], mail["version"], mail["group"]) == (None, None, None)
    only = history.running(engine, "mail")
    assert [r["deployment"] for r in only] == ["c1"]


def test_running_on_sqlite(tmp_path: Path) -> None:
    engine = store.create_engine(f"sqlite:///{tmp_path / 'klink.db'}")
    try:
        check(engine)
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_running_on_postgres(postgres_url: str) -> None:
    engine = store.create_engine(postgres_url)
    try:
        check(engine)
    finally:
        engine.dispose()
