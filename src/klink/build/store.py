"""The artifact store: one file per app+version, with its checksum, never overwritten.

``ArtifactStore`` is the interface (a folder today, S3 later). ``FolderArtifactStore`` keeps
``KLINK_HOME/artifacts/{app}/{version}/{app}-{version}.tar.gz`` beside ``artifact.json``.
A publication is written and hashed in a staging folder, verified, and only then renamed into
place in one step: a failed or interrupted upload leaves nothing behind, and of two uploads of
the same version exactly one wins (renaming onto an existing version fails: Conflict).
"""

from __future__ import annotations

import abc
import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from klink.errors import Conflict, InvalidInput, NotFound
from klink.names import check_name, check_version
from klink.providers.local.images import remove_tree

_SHA_CHARS = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Artifact:
    app: str
    version: str
    sha256: str
    size: int
    created_at: datetime
    source: str = "upload"  # upload | build

    @property
    def filename(self) -> str:
        return f"{self.app}-{self.version}.tar.gz"

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "created_at": self.created_at.isoformat(),
            "source": self.source,
            "filename": self.filename,
        }


def check_sha256(value: object, field: str = "sha256") -> str:
    if not isinstance(value, str) or len(value) != 64 or not set(value.lower()) <= _SHA_CHARS:
        raise InvalidInput(f"{field} must be 64 hexadecimal characters (SHA-256)", field=field)
    return value.lower()


class ArtifactStore(abc.ABC):
    @abc.abstractmethod
    def put(
        self,
        app: str,
        version: str,
        chunks: Iterable[bytes],
        *,
        sha256: str | None,
        at: datetime,
        source: str = "upload",
    ) -> Artifact:
        """Store a new version; Conflict if it exists, InvalidInput if the checksum differs."""

    @abc.abstractmethod
    def get(self, app: str, version: str) -> Artifact:
        """NotFound when missing."""

    @abc.abstractmethod
    def list(self, app: str) -> list[Artifact]:
        """Newest first."""

    @abc.abstractmethod
    def open(self, app: str, version: str) -> BinaryIO: ...

    @abc.abstractmethod
    def exists(self, app: str, version: str) -> bool: ...


class FolderArtifactStore(ArtifactStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _dir(self, app: str, version: str) -> Path:
        return self.root / check_name(app, "app") / check_version(version)

    def exists(self, app: str, version: str) -> bool:
        return (self._dir(app, version) / "artifact.json").is_file()

    def put(
        self,
        app: str,
        version: str,
        chunks: Iterable[bytes],
        *,
        sha256: str | None,
        at: datetime,
        source: str = "upload",
    ) -> Artifact:
        final = self._dir(app, version)
        expected = None if sha256 is None else check_sha256(sha256)
        if final.exists():
            raise Conflict(f"{app} version {version} exists; versions are never overwritten")
        staging_root = self.root / ".staging"
        staging_root.mkdir(parents=True, exist_ok=True)
        staging = staging_root / secrets.token_hex(8)
        staging.mkdir()
        try:
            digest = hashlib.sha256()
            size = 0
            with open(staging / f"{app}-{version}.tar.gz", "wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            actual = digest.hexdigest()
            if expected is not None and actual != expected:
                raise InvalidInput(
                    f"checksum mismatch: the upload's SHA-256 is {actual}, expected {expected}",
                    field="sha256",
                )
            artifact = Artifact(app, version, actual, size, at.astimezone(UTC), source)
            (staging / "artifact.json").write_text(json.dumps(artifact.to_json(), indent=2))
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, final)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    raise Conflict(
                        f"{app} version {version} exists; versions are never overwritten"
                    ) from None
                raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return artifact

    def get(self, app: str, version: str) -> Artifact:
        path = self._dir(app, version) / "artifact.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise NotFound(f"{app} has no version {version}", field="version") from None
        return _artifact_of(data)

    def list(self, app: str) -> list[Artifact]:
        folder = self.root / check_name(app, "app")
        if not folder.is_dir():
            return []
        found = []
        for entry in folder.iterdir():
            with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
                found.append(_artifact_of(json.loads((entry / "artifact.json").read_text())))
        found.sort(key=lambda a: (a.created_at, _version_key(a.version)), reverse=True)
        return found

    def open(self, app: str, version: str) -> BinaryIO:
        artifact = self.get(app, version)
        return open(self._dir(app, version) / artifact.filename, "rb")

    def file_size(self, app: str, version: str) -> int:
        artifact = self.get(app, version)
        return (self._dir(app, version) / artifact.filename).stat().st_size

    def iter_file(self, app: str, version: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        with self.open(app, version) as handle:
            while chunk := handle.read(chunk_size):
                yield chunk


def remove_stale(folder: Path, prefix: str, max_age: float, now: float) -> list[str]:
    """Remove entries of ``folder`` named ``prefix…`` older than ``max_age`` seconds: what a
    crash left half-written. Work younger than its time limit may still be in progress and is
    left alone. Shared by the build and bake services at start-up."""
    removed: list[str] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if not entry.name.startswith(prefix):
            continue
        try:
            age = now - entry.lstat().st_mtime
        except FileNotFoundError:
            continue
        if age > max_age:
            remove_tree(entry)
            removed.append(entry.name)
    return removed


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    parts = version.replace("-", ".").split(".")
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def _artifact_of(data: dict[str, Any]) -> Artifact:
    return Artifact(
        app=str(data["app"]),
        version=str(data["version"]),
        sha256=str(data["sha256"]),
        size=int(data["size"]),
        created_at=datetime.fromisoformat(str(data["created_at"])),
        source=str(data.get("source", "upload")),
    )
