"""A real PostgreSQL server on loopback, started once per test session when its binaries exist.

``postgres_url`` yields a SQLAlchemy URL to a fresh, empty database per test. The server runs
as the ``postgres`` system user when the tests run as root (PostgreSQL refuses root). When no
PostgreSQL binaries are installed, the fixture fails loudly: scripts/test installs them.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

_counter = itertools.count()


def _bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return found


def _as_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    user = "postgres" if _has_user("postgres") else "nobody"
    return ["runuser", "-u", user, "--", *argv]


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[tuple[str, int]]:
    root = Path(tempfile.mkdtemp(prefix="klink-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        user = "postgres" if _has_user("postgres") else "nobody"
        shutil.chown(root, user)
        root.chmod(0o700)
    subprocess.run(
        _as_user([_bin("initdb"), "-D", str(data), "-U", "klink", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    port = free_port()
    process = subprocess.Popen(
        _as_user(
            [
                _bin("postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                "-k",
                str(root),
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=klink dbname=postgres").close()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("PostgreSQL did not start") from None
            time.sleep(0.1)
    yield "127.0.0.1", port
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: tuple[str, int]) -> str:
    """A fresh, empty database on the session's server."""
    import psycopg

    host, port = postgres_server
    name = f"klink_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(
        f"host={host} port={port} user=klink dbname=postgres", autocommit=True
    ) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://klink@{host}:{port}/{name}"
