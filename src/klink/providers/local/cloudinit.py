"""The subset of cloud-init that Klink's user-data uses, applied to an instance root.

A ``#cloud-config`` document's ``write_files`` are written under the instance root (absolute
paths re-rooted, ``..`` refused), honouring ``permissions``, ``encoding`` (b64, gzip, gz+b64) and
``append``; an existing file (a read-only hard link into the image) is replaced, never written
in place. ``export`` lines of the ``etc/profile.d/*.sh`` files give the environment; ``runcmd``
entries run in order (strings with ``sh -c``, lists as argv) in the instance root.
"""

from __future__ import annotations

import base64
import gzip
import os
import re
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import yaml

from klink.errors import InvalidInput, ProviderError

_EXPORT = re.compile(r"^\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def parse(user_data: str) -> dict[str, Any]:
    """The cloud-config mapping; an empty document is an empty mapping."""
    text = user_data or ""
    if text.strip() and not text.lstrip().startswith("#cloud-config"):
        raise InvalidInput("user-data must be a #cloud-config document", field="user_data")
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InvalidInput(f"user-data is not valid YAML: {exc}", field="user_data") from None
    if not isinstance(doc, dict):
        raise InvalidInput("user-data must be a mapping", field="user_data")
    return doc


def rerooted(root: Path, path: str) -> Path:
    parts = [p for p in Path(path).parts if p not in ("/", "")]
    if any(p == ".." for p in parts) or not parts:
        raise InvalidInput(f"write_files path {path!r} is not allowed", field="write_files")
    return root.joinpath(*parts)


def _content(entry: Mapping[str, Any]) -> bytes:
    raw = entry.get("content", "")
    data = raw.encode() if isinstance(raw, str) else bytes(raw or b"")
    encoding = str(entry.get("encoding", "text")).lower()
    if encoding in ("b64", "base64"):
        return base64.b64decode(data)
    if encoding in ("gzip", "gz"):
        return gzip.decompress(data)
    if encoding in ("gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
        return gzip.decompress(base64.b64decode(data))
    if encoding in ("text", "text/plain", ""):
        return data
    raise InvalidInput(f"unknown write_files encoding {encoding!r}", field="write_files")


def write_files(root: Path, entries: Any) -> None:
    for entry in entries or []:
        if not isinstance(entry, dict) or "path" not in entry:
            raise InvalidInput("each write_files entry needs a path", field="write_files")
        target = rerooted(root, str(entry["path"]))
        target.parent.mkdir(parents=True, exist_ok=True)
        data = _content(entry)
        if entry.get("append") and target.exists():
            data = target.read_bytes() + data
        mode = int(str(entry.get("permissions", "0644")), 8)
        # Replace (new file + rename): the old one may be a read-only hard link into the image.
        temp = target.with_name(f".{target.name}.klink-new")
        temp.write_bytes(data)
        temp.chmod(mode)
        os.replace(temp, target)


def exports(root: Path) -> dict[str, str]:
    """``export NAME=value`` lines of ``etc/profile.d/*.sh``, in file-name order."""
    env: dict[str, str] = {}
    folder = root / "etc" / "profile.d"
    if not folder.is_dir():
        return env
    for script in sorted(folder.glob("*.sh")):
        for line in script.read_text(errors="replace").splitlines():
            match = _EXPORT.match(line)
            if not match:
                continue
            try:
                words = shlex.split(match.group(2))
            except ValueError:
                continue
            env[match.group(1)] = words[0] if words else ""
    return env


def run_commands(root: Path, commands: Any, env: Mapping[str, str], log: IO[bytes]) -> None:
    for command in commands or []:
        argv = ["sh", "-c", command] if isinstance(command, str) else [str(c) for c in command]
        result = subprocess.run(
            argv, cwd=root, env=dict(env), stdout=log, stderr=subprocess.STDOUT, check=False
        )
        if result.returncode != 0:
            raise ProviderError(f"runcmd {argv!r} exited with {result.returncode}")
