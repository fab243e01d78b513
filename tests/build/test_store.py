"""The folder artifact store: never overwritten, nothing half-written, newest first."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from klink.build.store import FolderArtifactStore
from klink.build.versions import next_build_number, version_of
from klink.errors import Conflict, InvalidInput
from klink.service.runtime import Runtime

AT = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


def test_put_get_list_newest_first(tmp_path: Path) -> None:
    store = FolderArtifactStore(tmp_path)
    for index, version in enumerate(["1.0.9", "1.0.10", "1.0.2"]):
        store.put("search", version, [version.encode()], sha256=None, at=AT + timedelta(index))
    assert [a.version for a in store.list("search")] == ["1.0.2", "1.0.10", "1.0.9"]
    artifact = store.get("search", "1.0.10")
    assert artifact.sha256 == hashlib.sha256(b"1.0.10").hexdigest()
    assert artifact.filename == "search-1.0.10.tar.gz"
    assert b"".join(store.iter_file("search", "1.0.10")) == b"1.0.10"
    assert store.list("other") == []


def test_a_failing_upload_leaves_nothing(tmp_path: Path) -> None:
    store = FolderArtifactStore(tmp_path)

    def broken() -> Iterator[bytes]:
        yield b"half"
        raise OSError("client went away")

    with pytest.raises(OSError, match="went away"):
        store.put("search", "1.0.1", broken(), sha256=None, at=AT)
    with pytest.raises(InvalidInput) as caught:
        store.put("search", "1.0.1", [b"data"], sha256="0" * 64, at=AT)
    assert caught.value.field == "sha256"
    assert not store.exists("search", "1.0.1")
    assert list((tmp_path / ".staging").iterdir()) == []
    assert not (tmp_path / "search" / "1.0.1").exists()


def test_of_two_racing_uploads_exactly_one_wins(tmp_path: Path) -> None:
    store = FolderArtifactStore(tmp_path)
    gate = threading.Barrier(2)
    outcomes: list[str] = []

    def chunks(payload: bytes) -> Iterator[bytes]:
        gate.wait(5)
        yield payload

    def upload(payload: bytes) -> None:
        try:
            store.put("search", "2.0.1", chunks(payload), sha256=None, at=AT)
            outcomes.append("stored")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=upload, args=(p,)) for p in (b"one", b"two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(outcomes) == ["conflict", "stored"]
    content = b"".join(store.iter_file("search", "2.0.1"))
    assert store.get("search", "2.0.1").sha256 == hashlib.sha256(content).hexdigest()


def test_build_numbers_only_go_up(runtime: Runtime) -> None:
    assert [next_build_number(runtime.engine, "search") for _ in range(3)] == [1, 2, 3]
    assert next_build_number(runtime.engine, "other") == 1
    assert version_of("3.14", 7) == "3.14.7"
    assert version_of(None, 7) == "1.0.7"
    assert version_of("3.14", 7, "4.0.0-rc1\n") == "4.0.0-rc1"
    with pytest.raises(InvalidInput) as caught:
        version_of("3.14", 7, "not a version!")
    assert caught.value.field == "dist/VERSION"


def test_stale_leftovers_are_removed_and_fresh_work_is_not(tmp_path: Path) -> None:
    import os

    from klink.build.store import remove_stale

    old = tmp_path / ".stage-old"
    (old / "etc").mkdir(parents=True)
    (old / "etc" / "file").write_text("x")
    (old / "etc" / "file").chmod(0o444)
    fresh = tmp_path / ".stage-fresh"
    fresh.mkdir()
    other = tmp_path / "img-0123456789ab"
    other.mkdir()
    now = 1_000_000.0
    for path in (old, other):
        os.utime(path, (now - 7200, now - 7200))
    os.utime(fresh, (now - 60, now - 60))
    assert remove_stale(tmp_path, ".stage-", 3600, now) == [".stage-old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".stage-fresh", "img-0123456789ab"]
    assert remove_stale(tmp_path / "missing", "", 1, now) == []
