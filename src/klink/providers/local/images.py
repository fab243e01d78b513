"""Local images: immutable file trees under ``KLINK_HOME/local/images/img-<12 hex>/``.

Each image holds ``manifest.json`` and ``root/`` (the file tree). The manifest is
``{"id", "name", "state", "created", "tags", "start_command", "health_path", "parent"}``;
``start_command`` is a shell command run with the instance root as working directory.

Creation is atomic: the tree is linked into a temporary directory beside the images, frozen
(every file made read-only) and renamed into place. Copies are cheap: ``link_tree`` hard-links
files (falling back to a copy across devices), so baking a service layer on a base image and
launching an instance cost no full copy. Because image files are read-only and shared by
hard links, whoever holds a linked copy (an instance root, a staging tree) must *replace* a file
(write a new file, then rename it over the old one), never modify it in place: an in-place
write would change the image and every instance sharing that inode.

Tags live in the manifest, which is rewritten atomically under a lock. Usable without the
daemon: ``ImageStore(home)`` is just files.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from klink.errors import InvalidInput, NotFound
from klink.providers.base import Image

IMAGE_PREFIX = "img-"
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def is_image_id(value: str) -> bool:
    tail = value[len(IMAGE_PREFIX) :]
    return (
        value.startswith(IMAGE_PREFIX)
        and len(tail) == 12
        and all(c in "0123456789abcdef" for c in tail)
    )


def new_image_id() -> str:
    return IMAGE_PREFIX + secrets.token_hex(6)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copy2(src, dst)


def link_tree(src: Path, dst: Path) -> None:
    """Copy the tree ``src`` to ``dst`` (which must not exist) with hard links.

    Directories are created fresh (writable, so the copy may add and replace files); files are
    hard links to the source's inodes; symlinks are recreated as they are.
    """
    dst.mkdir(parents=True)
    for dirpath, dirnames, filenames in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        target_dir = dst / rel
        for name in dirnames:
            source = Path(dirpath) / name
            if source.is_symlink():
                os.symlink(os.readlink(source), target_dir / name)
            else:
                (target_dir / name).mkdir(mode=stat.S_IMODE(source.stat().st_mode) | stat.S_IWUSR)
        for name in filenames:
            source = Path(dirpath) / name
            if source.is_symlink():
                os.symlink(os.readlink(source), target_dir / name)
            else:
                _link_or_copy(source, target_dir / name)
        # os.walk does not descend into symlinked directories, which is what we want.
        dirnames[:] = [n for n in dirnames if not (Path(dirpath) / n).is_symlink()]


def freeze_tree(root: Path) -> None:
    """Make every regular file under ``root`` read-only (directories stay writable)."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & _WRITE_BITS:
                path.chmod(mode & ~_WRITE_BITS)


def remove_tree(root: Path) -> None:
    """Delete a tree that may hold read-only files and directories."""

    def _retry(func: Any, path: str, _exc: Any) -> None:
        parent = os.path.dirname(path)
        os.chmod(parent, stat.S_IRWXU)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, stat.S_IRWXU)
        func(path)

    if root.exists() or root.is_symlink():
        shutil.rmtree(root, onerror=_retry)


def _parse_time(raw: object) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class ImageStore:
    """The images of one ``KLINK_HOME``."""

    def __init__(self, home: Path) -> None:
        self.dir = Path(home) / "local" / "images"

    # Paths --------------------------------------------------------------------------------
    def path(self, image_id: str) -> Path:
        if not is_image_id(image_id):
            raise NotFound(f"image {image_id!r} does not exist", field="image_id")
        return self.dir / image_id

    def root(self, image_id: str) -> Path:
        """The image's file tree; raise NotFound when the image does not exist."""
        self.manifest(image_id)
        return self.path(image_id) / "root"

    # Create -------------------------------------------------------------------------------
    def create(
        self,
        staging: Path,
        *,
        name: str,
        start_command: str,
        tags: Mapping[str, str] | None = None,
        health_path: str = "/healthcheck",
        parent: str | None = None,
        move: bool = False,
        clock: Any = None,
    ) -> Image:
        """Make an image of the tree ``staging``; atomic, frozen read-only.

        ``move=True`` renames ``staging`` into the image (same filesystem, staging is consumed);
        otherwise the tree is hard-linked, and the staging copy must then be treated as
        read-only too (its files share the image's inodes).
        """
        staging = Path(staging)
        if not staging.is_dir():
            raise InvalidInput(f"staging tree {staging} is not a directory", field="staging")
        if not start_command.strip():
            raise InvalidInput("an image needs a start command", field="start_command")
        if parent is not None:
            self.manifest(parent)
        now = clock() if clock is not None else datetime.now(UTC)
        image_id = new_image_id()
        self.dir.mkdir(parents=True, exist_ok=True)
        temp = self.dir / f".tmp-{image_id}"
        try:
            temp.mkdir()
            if move:
                os.rename(staging, temp / "root")
            else:
                link_tree(staging, temp / "root")
            freeze_tree(temp / "root")
            manifest = {
                "id": image_id,
                "name": name,
                "state": "available",
                "created": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "tags": dict(tags or {}),
                "start_command": start_command,
                "health_path": health_path,
                "parent": parent,
            }
            _write_json(temp / "manifest.json", manifest)
            os.rename(temp, self.dir / image_id)
        except BaseException:
            remove_tree(temp)
            raise
        return _to_image(manifest)

    # Read ---------------------------------------------------------------------------------
    def manifest(self, image_id: str) -> dict[str, Any]:
        try:
            data = json.loads((self.path(image_id) / "manifest.json").read_text())
        except FileNotFoundError:
            raise NotFound(f"image {image_id} does not exist", field="image_id") from None
        if not isinstance(data, dict):
            raise NotFound(f"image {image_id} has no readable manifest", field="image_id")
        return data

    def describe(self, image_id: str) -> Image:
        return _to_image(self.manifest(image_id))

    def list(self, app: str | None = None, *, klink_only: bool = True) -> list[Image]:
        """Images newest first; only those tagged ``klink:app`` unless ``klink_only=False``."""
        if not self.dir.is_dir():
            return []
        images = []
        for entry in self.dir.iterdir():
            if not is_image_id(entry.name):
                continue
            try:
                image = self.describe(entry.name)
            except NotFound:
                continue
            if klink_only and image.app is None:
                continue
            if app is not None and image.app != app:
                continue
            images.append(image)
        epoch = datetime.min.replace(tzinfo=UTC)
        images.sort(key=lambda im: (im.created_at or epoch, im.id), reverse=True)
        return images

    # Change -------------------------------------------------------------------------------
    def tag(self, image_id: str, tags: Mapping[str, str]) -> Image:
        with self._locked(image_id):
            manifest = self.manifest(image_id)
            manifest["tags"] = {**manifest.get("tags", {}), **{k: str(v) for k, v in tags.items()}}
            _write_json(self.path(image_id) / "manifest.json", manifest)
        return _to_image(manifest)

    def delete(self, image_id: str) -> None:
        """Idempotent; checks nothing (whoever calls decides whether the image is in use)."""
        if not is_image_id(image_id):
            return
        path = self.dir / image_id
        if not path.exists():
            return
        trash = self.dir / f".del-{image_id}-{secrets.token_hex(3)}"
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return
        remove_tree(trash)

    @contextmanager
    def _locked(self, image_id: str) -> Iterator[None]:
        path = self.path(image_id)
        if not path.is_dir():
            raise NotFound(f"image {image_id} does not exist", field="image_id")
        with open(path / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    temp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(temp, path)


def _to_image(manifest: Mapping[str, Any]) -> Image:
    tags = manifest.get("tags") or {}
    return Image(
        id=str(manifest["id"]),
        name=str(manifest.get("name", manifest["id"])),
        state=str(manifest.get("state", "available")),
        created_at=_parse_time(manifest.get("created")),
        tags={str(k): str(v) for k, v in tags.items()},
    )


class ImageMethods:
    """The provider's image methods: images are plain files, so both the daemon's
    ``LocalCloud`` and the ``LocalProvider`` client serve them straight from the store."""

    images: ImageStore

    def describe_image(self, image_id: str) -> Image:
        return self.images.describe(image_id)

    def list_images(self, app: str | None = None) -> list[Image]:
        return self.images.list(app)

    def tag_image(self, image_id: str, tags: Mapping[str, str]) -> None:
        self.images.tag(image_id, tags)

    def deregister_image(self, image_id: str) -> None:
        self.images.delete(image_id)
