"""Launching one instance: a hard-linked copy of the image, its cloud-config, its process.

The instance folder is ``KLINK_HOME/local/instances/<id>/root``; its log (stdout and stderr of
runcmd and of the start command) is ``KLINK_HOME/local/logs/<id>.log``. The start command runs
with ``sh -c`` in the root, in its own session (so the whole process group is signalled on
stop), with the environment exported by ``etc/profile.d/*.sh`` plus ``KLINK_ROOT``,
``KLINK_INSTANCE_IP`` and ``KLINK_INSTANCE_ID``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from klink.providers.local import cloudinit, processes
from klink.providers.local.images import ImageStore, link_tree, remove_tree


@dataclass(frozen=True)
class Layout:
    home: Path

    @property
    def local(self) -> Path:
        return self.home / "local"

    def instance_dir(self, instance_id: str) -> Path:
        return self.local / "instances" / instance_id

    def log_path(self, instance_id: str) -> Path:
        return self.local / "logs" / f"{instance_id}.log"


def base_environment() -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")
    return {k: os.environ[k] for k in keep if k in os.environ}


def launch(
    layout: Layout, images: ImageStore, instance_id: str, image_id: str, ip: str, user_data: str
) -> subprocess.Popen[bytes]:
    """Prepare the root, apply the user-data and start the image's start command."""
    manifest = images.manifest(image_id)
    folder = layout.instance_dir(instance_id)
    remove_tree(folder)
    folder.mkdir(parents=True)
    root = folder / "root"
    link_tree(images.root(image_id), root)
    doc = cloudinit.parse(user_data)
    log_path = layout.log_path(instance_id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        cloudinit.write_files(root, doc.get("write_files"))
        env = {
            **base_environment(),
            "HOME": str(root),
            **cloudinit.exports(root),
            "KLINK_ROOT": str(root),
            "KLINK_INSTANCE_IP": ip,
            "KLINK_INSTANCE_ID": instance_id,
        }
        cloudinit.run_commands(root, doc.get("runcmd"), env, log)
        return subprocess.Popen(
            ["sh", "-c", str(manifest["start_command"])],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def identity(process: subprocess.Popen[bytes]) -> tuple[int, int | None]:
    return process.pid, processes.start_time(process.pid)


def read_log(layout: Layout, instance_id: str, tail: int = 200) -> str:
    try:
        with open(layout.log_path(instance_id), "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 256 * 1024))
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-tail:]) + ("\n" if text else "")
