"""Local images: atomic creation, read-only freezing, hard-linked copies, tags, listing."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from klink.errors import InvalidInput, NotFound
from klink.providers.base import TAG_APP, TAG_VERSION
from klink.providers.local.images import ImageStore, is_image_id, link_tree


def _staging(tmp_path: Path) -> Path:
    staging = tmp_path / f"staging{len(list(tmp_path.glob('staging*')))}"
    (staging / "app").mkdir(parents=True)
    (staging / "app" / "run.sh").write_text("echo hi\n")
    (staging / "app" / "run.sh").chmod(0o755)
    (staging / "VERSION").write_text("1.0\n")
    os.symlink("app/run.sh", staging / "start")
    return staging


def test_create_freezes_and_describes(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "home")
    image = store.create(
        _staging(tmp_path),
        name="hello-1.0",
        start_command="sh app/run.sh",
        tags={TAG_APP: "hello", TAG_VERSION: "1.0"},
    )
    assert is_image_id(image.id)
    assert image.app == "hello"
    assert image.version == "1.0"
    assert image.state == "available"
    root = store.root(image.id)
    assert (root / "VERSION").read_text() == "1.0\n"
    assert not os.access(root / "VERSION", os.W_OK) or os.geteuid() == 0
    assert (root / "app" / "run.sh").stat().st_mode & 0o777 == 0o555
    assert os.readlink(root / "start") == "app/run.sh"
    manifest = store.manifest(image.id)
    assert manifest["start_command"] == "sh app/run.sh"
    assert manifest["health_path"] == "/healthcheck"
    assert manifest["parent"] is None
    assert manifest["created"].endswith("Z")
    # No temporary directory is left behind.
    assert [p.name for p in store.dir.iterdir()] == [image.id]


def test_link_tree_shares_inodes(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    image = store.create(_staging(tmp_path), name="x", start_command="true", tags={TAG_APP: "a"})
    copy = tmp_path / "instance"
    link_tree(store.root(image.id), copy)
    assert (copy / "VERSION").stat().st_ino == (store.root(image.id) / "VERSION").stat().st_ino
    # The copy's directories are writable: a file is replaced, and the image is untouched.
    new = copy / ".VERSION.new"
    new.write_text("2.0\n")
    os.replace(new, copy / "VERSION")
    assert (store.root(image.id) / "VERSION").read_text() == "1.0\n"


def test_list_newest_first_by_app_and_tag(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    a1 = store.create(
        _staging(tmp_path), name="a1", start_command="true", tags={TAG_APP: "a"}, clock=lambda: t0
    )
    b1 = store.create(
        _staging(tmp_path),
        name="b1",
        start_command="true",
        tags={TAG_APP: "b"},
        clock=lambda: t0 + timedelta(hours=1),
    )
    a2 = store.create(
        _staging(tmp_path),
        name="a2",
        start_command="true",
        tags={TAG_APP: "a"},
        clock=lambda: t0 + timedelta(hours=2),
    )
    untagged = store.create(_staging(tmp_path), name="base", start_command="true")
    assert [i.id for i in store.list()] == [a2.id, b1.id, a1.id]
    assert [i.id for i in store.list("a")] == [a2.id, a1.id]
    assert untagged.id in {i.id for i in store.list(klink_only=False)}
    tagged = store.tag(a1.id, {TAG_VERSION: "9"})
    assert tagged.version == "9"
    assert tagged.app == "a"
    assert store.describe(a1.id).tags == {TAG_APP: "a", TAG_VERSION: "9"}


def test_delete_is_idempotent_and_missing_is_not_found(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    image = store.create(_staging(tmp_path), name="x", start_command="true")
    store.delete(image.id)
    store.delete(image.id)
    with pytest.raises(NotFound):
        store.describe(image.id)
    with pytest.raises(NotFound):
        store.describe("../etc")
    assert list(store.dir.iterdir()) == []


def test_bad_input_leaves_nothing(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    with pytest.raises(InvalidInput):
        store.create(tmp_path / "missing", name="x", start_command="true")
    with pytest.raises(InvalidInput):
        store.create(_staging(tmp_path), name="x", start_command=" ")
    with pytest.raises(NotFound):
        store.create(_staging(tmp_path), name="x", start_command="true", parent="img-000000000000")
    assert not store.dir.exists() or list(store.dir.iterdir()) == []
