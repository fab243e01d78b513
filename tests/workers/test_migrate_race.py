"""Four processes started together on an empty database migrate it once (issue 19, part 1).

Each process runs ``store.migrate`` (what ``Runtime.open`` does at start-up of ``klink serve``
and ``klink worker``), all released at the same instant. Without a lock across processes two of
them run the same ``CREATE TABLE`` and one fails, or Alembic writes a branch's version twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from klink import store

RACER = (
    "import sys, time\n"
    "from klink import store\n"
    "engine = store.create_engine(sys.argv[1])\n"
    "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
    "store.migrate(engine)\n"
    "print('migrated')\n"
)


def _race(url: str, processes: int = 4) -> None:
    start_at = time.time() + 3.0  # every process has imported Klink by then
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, url, str(start_at)],
            env={**os.environ},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        assert out.strip() == "migrated"


def _heads() -> list[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(store.__file__).parent / "alembic"))
    config.set_main_option("version_locations", " ".join(store.migration_locations()))
    config.set_main_option("path_separator", "space")
    return sorted(ScriptDirectory.from_config(config).get_heads())


def _check_schema_once(url: str) -> None:
    engine = store.create_engine(url)
    try:
        with store.read(engine) as conn:
            versions = sorted(
                conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
            )
            tables = set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert versions == _heads()  # one row per branch, each at its head, none twice
    assert {"deployments", "deploy_tasks", "deploy_logs", "deploy_slots"} <= tables


@pytest.mark.slow
@pytest.mark.postgres
def test_four_processes_migrate_an_empty_postgres_once(postgres_url: str) -> None:
    _race(postgres_url)
    _check_schema_once(postgres_url)


@pytest.mark.slow
def test_four_processes_migrate_an_empty_sqlite_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'klink.db'}"
    _race(url)
    _check_schema_once(url)
    assert (tmp_path / "klink.db.migrate.lock").exists()
