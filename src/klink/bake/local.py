"""The native baker of the local provider: the same two phases as on AWS, with file trees.

Images live in the local provider's ``ImageStore`` (``KLINK_HOME/local/images``), which is plain
files and needs no daemon.

- **Base image**: a staging tree (empty, or hard-linked from a parent image) in which the base
  steps run with ``sh -c`` (default: the ``etc/``, ``opt/``, ``var/`` folders and a marker
  file ``etc/klink-base``); frozen into an image tagged ``klink:role=base``.
- **Service image**: the newest base image's tree hard-linked into a staging folder
  (``cp -al``; no data is copied, which is what makes the phase fast), the artifact unpacked
  into ``opt/{app}/`` (fresh files, never written through a link), the bake commands
  (``{{version}}`` substituted) run with ``sh -ec`` with the staging tree as working directory
  and a throwaway ``HOME``/``TMPDIR``, within the time limit; then the manifest is written
  and the tree renamed into place, frozen.

Bake commands must replace files of the base rather than modify them in place: the staging
tree shares the base's inodes (the image store's rule). A failed bake leaves nothing behind.
"""

from __future__ import annotations

import os
import secrets
import tarfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import IO

from klink.build import process
from klink.errors import ExternalCommandError, InvalidInput, NotFound
from klink.names import image_name
from klink.providers.base import (
    TAG_APP,
    TAG_ARTIFACT_SHA256,
    TAG_BAKED_AT,
    TAG_BASE_IMAGE,
    TAG_EMBARGO,
    TAG_MANAGED_BY,
    TAG_ROLE,
    TAG_VERSION,
    Image,
)
from klink.providers.local.images import ImageStore, link_tree, remove_tree

DEFAULT_BASE_STEPS = (
    "mkdir -p etc opt var/log var/run tmp",
    'printf "klink base image\\nbaked-at=%s\\n" "$KLINK_BAKED_AT" > etc/klink-base',
)
BASE_START_COMMAND = "true"  # base images are not launched; the store needs a command


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def service_tags(
    app: str, version: str, sha256: str, base_id: str, at: datetime, embargo: Sequence[str]
) -> dict[str, str]:
    """The tags of a service image, on every target."""
    tags = {
        TAG_APP: app,
        TAG_VERSION: version,
        TAG_ARTIFACT_SHA256: sha256,
        TAG_BASE_IMAGE: base_id,
        TAG_BAKED_AT: stamp(at),
        TAG_MANAGED_BY: "klink",
    }
    if embargo:
        tags[TAG_EMBARGO] = ",".join(embargo)
    return tags


@dataclass
class LocalBaker:
    images: ImageStore
    clock: Callable[[], datetime]
    timeout: float

    # Base images ---------------------------------------------------------------------------
    def base_images(self) -> list[Image]:
        return [i for i in self.images.list(klink_only=False) if i.tags.get(TAG_ROLE) == "base"]

    def newest_base(self) -> Image:
        bases = self.base_images()
        if not bases:
            raise NotFound(
                "no base image for target local: bake one first (klink bake-base --target local)",
                field="base_image",
            )
        return bases[0]

    def bake_base(
        self,
        *,
        steps: Sequence[str] = DEFAULT_BASE_STEPS,
        parent: str | None = None,
        log: Callable[[str], None],
    ) -> Image:
        at = self.clock()
        staging = self._staging()
        try:
            if parent is not None:
                fast_link_tree(self.images.root(parent), staging)
            else:
                staging.mkdir(parents=True)
            env = self._env(staging, {"KLINK_BAKED_AT": stamp(at)})
            for step in steps:
                log(f"$ {step}")
                process.run(
                    ["sh", "-ec", step],
                    cwd=staging,
                    env=env,
                    timeout=self.timeout,
                    on_line=log,
                    what="a base step",
                )
            self._drop_scratch(staging)
            image = self.images.create(
                staging,
                name=f"base-{at:%Y%m%d%H%M%S}",
                start_command=BASE_START_COMMAND,
                tags={TAG_ROLE: "base", TAG_BAKED_AT: stamp(at), TAG_MANAGED_BY: "klink"},
                parent=parent,
                move=True,
                clock=lambda: at,
            )
        finally:
            remove_tree(staging)
        log(f"base image {image.id} ({image.name})")
        return image

    # Service images ------------------------------------------------------------------------
    def bake_service(
        self,
        *,
        app: str,
        version: str,
        artifact: Path | IO[bytes],
        sha256: str,
        bake_commands: Sequence[str],
        start_command: str,
        verify: Callable[[], object] = lambda: None,
        health_path: str = "/healthcheck",
        embargo: Sequence[str] = (),
        log: Callable[[str], None],
    ) -> Image:
        if not start_command.strip():
            raise InvalidInput(
                f"application {app} has no startCommand metadata; a local image needs one",
                field="startCommand",
            )
        base = self.newest_base()
        at = self.clock()
        staging = self._staging()
        unpacked = staging.with_name(staging.name + "-app")
        try:
            # Linking the base (cp, another process) and unpacking the artifact (zlib, which
            # releases the GIL) run side by side; the unpacked tree is then moved into place.
            log(f"linking base image {base.id} ({base.name})")
            log(f"unpacking the artifact into opt/{app}/")
            with ThreadPoolExecutor(max_workers=1) as pool:
                linking = pool.submit(fast_link_tree, self.images.root(base.id), staging)
                try:
                    unpacked.mkdir()
                    _unpack(artifact, unpacked)
                    # A streamed artifact is checked once read whole, before anything is kept.
                    verify()
                finally:
                    linking.result()
            app_dir = staging / "opt" / app
            # The linked tree shares the base's inodes: replace, never write into it.
            remove_tree(app_dir)
            app_dir.parent.mkdir(parents=True, exist_ok=True)
            os.rename(unpacked, app_dir)
            commands = [c.replace("{{version}}", version) for c in bake_commands]
            if commands:
                env = self._env(
                    staging,
                    {"KLINK_APP": app, "KLINK_VERSION": version, "KLINK_APP_DIR": f"opt/{app}"},
                )
                for command in commands:
                    log(f"$ {command}")
                process.run(
                    ["sh", "-ec", "\n".join(commands)],
                    cwd=staging,
                    env=env,
                    timeout=self.timeout,
                    on_line=log,
                    what="the bake commands",
                )
            self._drop_scratch(staging)
            tags = service_tags(app, version, sha256, base.id, at, embargo)
            image = self.images.create(
                staging,
                name=image_name(app, version, at),
                start_command=start_command,
                tags=tags,
                health_path=health_path,
                parent=base.id,
                move=True,
                clock=lambda: at,
            )
        finally:
            remove_tree(staging)
            remove_tree(unpacked)
        log(f"image {image.id} ({image.name})")
        return image

    # Helpers ------------------------------------------------------------------------------
    def _staging(self) -> Path:
        self.images.dir.mkdir(parents=True, exist_ok=True)
        # Beside the images, so that the finished tree is renamed into place, not copied.
        return self.images.dir / f".stage-{secrets.token_hex(6)}"

    def _env(self, staging: Path, extra: Mapping[str, str]) -> dict[str, str]:
        scratch = staging / ".klink-bake"
        scratch.mkdir(exist_ok=True)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(scratch),
            "TMPDIR": str(scratch),
            "LANG": "C.UTF-8",
            "KLINK_ROOT": str(staging),
            **extra,
        }

    def _drop_scratch(self, staging: Path) -> None:
        remove_tree(staging / ".klink-bake")


def fast_link_tree(src: Path, dst: Path) -> None:
    """``link_tree`` (hard links, same layout) done by ``cp -al``, several times faster than
    linking file by file from Python; falls back to ``link_tree`` where ``cp`` cannot."""
    try:
        process.run(["cp", "-al", "--", str(src), str(dst)], timeout=600, what="cp -al")
    except ExternalCommandError:
        remove_tree(dst)
        link_tree(src, dst)


def _unpack(artifact: Path | IO[bytes], dest: Path) -> None:
    """Unpack a file, or a stream read once (no seeking: ``r|*``)."""
    if isinstance(artifact, Path):
        opener = partial(tarfile.open, artifact, mode="r:*")
    else:
        opener = partial(tarfile.open, fileobj=artifact, mode="r|*")
    try:
        with opener() as tar:
            # The default 16 KiB copy buffer makes unpacking about twice as slow.
            setattr(tar, "copybufsize", 1 << 20)  # noqa: B010 - not in typeshed's TarFile
            # "data": no absolute paths, no "..", no links out of dest, no device files.
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise InvalidInput(f"the artifact is not a readable tar archive: {exc}") from None
