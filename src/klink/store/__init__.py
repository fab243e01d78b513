"""Database access: SQLAlchemy Core on SQLite (WAL, the default) or PostgreSQL.

Each service defines its tables in its own ``tables.py`` on the shared ``METADATA`` and keeps
its Alembic migrations in ``klink/<service>/migrations/`` as a branch of its own (branch label =
service name), so services evolve their schemas independently; ``migrate`` applies every
branch's head at start-up, under a lock that holds across processes (``migration_lock``), so
that N processes starting together on an empty database migrate it once. Keep SQL portable:
both databases run the same statements.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from klink.errors import Conflict
from klink.settings import private_file

METADATA = sa.MetaData()


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Timestamps stored as UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_MIGRATE_LOCK = threading.Lock()


def _json_dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _private_database(path: Path) -> None:
    """The database file and its WAL and SHM the owner's only (0600). SQLite creates the WAL
    and SHM with the database file's mode, so a database made 0600 first keeps them 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        private_file(file)


def create_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            _private_database(Path(path))
        engine = sa.create_engine(
            url,
            json_serializer=_json_dumps,
            connect_args={"check_same_thread": False, "timeout": 30},
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            # pysqlite's own transaction handling is off; the "begin" listener below decides.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("klink_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    connect_args = {}
    if "idle_in_transaction_session_timeout" not in url:
        connect_args["options"] = (
            f"-c idle_in_transaction_session_timeout={_IDLE_IN_TRANSACTION_MS}"
        )
    return sa.create_engine(
        url, json_serializer=_json_dumps, pool_pre_ping=True, connect_args=connect_args
    )


# Klink never waits on anything but the database inside a transaction, so a session idle in one
# for this long belongs to a process that is gone, paused or cut off: PostgreSQL ends it, and its
# row locks (a deployment it was writing) go with it, so another worker can take that deployment
# over instead of waiting for TCP to notice (hours). A URL's own ``options`` setting wins.
_IDLE_IN_TRANSACTION_MS = 5000


def migration_locations() -> list[str]:
    """Every ``klink/<service>/migrations`` folder: one Alembic branch each."""
    root = Path(__file__).resolve().parent.parent
    return sorted(str(p) for p in root.glob("*/migrations") if p.is_dir())


def migrate(engine: Engine) -> None:
    """Apply every branch's migrations up to its head (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "alembic"))
    config.set_main_option("version_locations", " ".join(migration_locations()))
    config.set_main_option("path_separator", "space")
    with _MIGRATE_LOCK, migration_lock(engine), write(engine) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")


# Any fixed 64-bit key: the advisory lock space is per database, shared with nothing of ours.
_ADVISORY_KEY = 0x6B6C696E6B  # "klink"


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Hold a lock that serialises migrations across processes, for as long as the block runs.

    PostgreSQL: a session-level ``pg_advisory_lock`` on a connection of its own (held until
    unlocked or the session ends, so a killed migrator frees it). SQLite: ``fcntl.flock`` on a
    ``<database>.migrate.lock`` file beside the database (freed by the kernel if the process
    dies); an in-memory database belongs to one process and needs none. The second process
    waits, then finds every head applied and does nothing.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _ADVISORY_KEY})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(
                    sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_KEY}
                )
                connection.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    path = Path(database).with_name(Path(database).name + ".migrate.lock")
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """A read-write transaction. On SQLite it takes the write lock at BEGIN (IMMEDIATE), so a
    read-then-write transaction never fails halfway with "database is locked"; the busy
    timeout queues writers instead. On PostgreSQL two transactions may both find a name free
    and both insert it: the loser's unique violation is a ``Conflict`` (409), never a 500."""
    try:
        with (
            engine.connect().execution_options(klink_write=True) as connection,
            connection.begin(),
        ):
            yield connection
    except sa.exc.IntegrityError as exc:
        raise Conflict(f"a concurrent change got there first ({type(exc.orig).__name__})") from None


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction (a consistent snapshot; never blocks writers on WAL)."""
    with engine.connect() as connection, connection.begin():
        yield connection


def ping(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        return False
    return True
