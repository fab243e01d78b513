"""KLINK_HOME and what is secret in it are the owner's only: the home 0700, the database and its
WAL/SHM, the tokens and the logs 0600, also when they were there before with wider modes."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from klink.service.runtime import Runtime
from tests.conftest import make_settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _wide_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what most machines use: 644 files, 755 folders
    yield
    os.umask(old)


def _open_and_write(home: Path) -> None:
    runtime = Runtime.open(make_settings(home))
    try:
        from klink.metadata.store import MetadataStore

        MetadataStore(runtime.engine).put(
            "application", "search", {"contact": "a@b.c"}, actor="t", at=runtime.clock()
        )
        files = ["klink.db", "klink.db-wal", "klink.db-shm", "admin-token", "internal-token"]
        for name in files:
            assert _mode(home / name) == 0o600, (name, oct(_mode(home / name)))
        assert _mode(home) == 0o700
    finally:
        runtime.close()


def test_a_new_home_is_the_owners_only(tmp_path: Path) -> None:
    _open_and_write(tmp_path / "home")


def test_an_existing_home_with_wide_modes_is_tightened(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _open_and_write(home)
    home.chmod(0o755)
    for name in ("klink.db", "admin-token", "internal-token"):
        (home / name).chmod(0o644)
    for name in ("klink.db-wal", "klink.db-shm"):
        if (home / name).exists():
            (home / name).chmod(0o644)
    _open_and_write(home)


def test_a_log_opened_private_is_0600_even_if_it_was_wider(tmp_path: Path) -> None:
    from klink.settings import open_private  # what serve.log is opened with

    log = tmp_path / "serve.log"
    log.write_text("old line\n")
    log.chmod(0o644)
    with open_private(log) as out:
        out.write(b"new line\n")
    assert _mode(log) == 0o600
    assert log.read_text() == "old line\nnew line\n"
    fresh = tmp_path / "fresh.log"
    with open_private(fresh) as out:
        out.write(b"x")
    assert _mode(fresh) == 0o600
