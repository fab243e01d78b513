"""Running git: the only place in Klink that starts a git process, and the ref syntax it accepts.

Every command is an argument list (never a shell) run with a clean configuration (no system or
global git config, no prompts, C locale) so that a user's ``~/.gitconfig`` cannot change what
the service sees. What a request names reaches git only after ``check_ref`` accepted it, and
only after ``--end-of-options`` or as data on stdin, never where git would read an option.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from klink.errors import ExternalCommandError
from klink.names import check_ref

__all__ = ["check_ref"]

FULL_HASH_RE = re.compile(r"^[0-9a-f]{40}$")
ZERO_HASH = "0" * 40


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GIT_CONFIG") and key not in ("GIT_DIR", "GIT_WORK_TREE")
    }
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
        }
    )
    if extra:
        env.update(extra)
    return env


def run(
    git_dir: Path,
    args: Sequence[str],
    *,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """``git --git-dir=GIT_DIR ARGS``; ExternalCommandError with git's stderr on failure."""
    argv = ["git", f"--git-dir={git_dir}", *args]
    try:
        done = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            env=git_env(env),
            check=False,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExternalCommandError(f"git {args[0]} could not run: {exc}") from None
    if check and done.returncode != 0:
        output = done.stderr.decode(errors="replace").strip()
        raise ExternalCommandError(
            f"git {args[0]} failed: {output.splitlines()[-1] if output else done.returncode}",
            output=output[-2000:],
        )
    return done


class BlobReader:
    """One ``git cat-file --batch`` process answering several object names in turn.

    Used to resolve a ref and read a file of that commit with one process (half the cost of
    ``rev-parse`` then ``cat-file``). Names go to git on stdin, where they cannot be options.
    """

    def __init__(self, git_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self._proc = subprocess.Popen(
            ["git", f"--git-dir={git_dir}", "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=git_env(env),
        )

    def get(self, name: str) -> tuple[str, str, bytes] | None:
        """(object id, type, content) of ``name``, or None when missing or ambiguous."""
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        if "\n" in name or "\0" in name:
            return None
        self._proc.stdin.write(name.encode() + b"\n")
        self._proc.stdin.flush()
        header = self._proc.stdout.readline().decode(errors="replace").split()
        if len(header) != 3:
            if not header:
                raise ExternalCommandError("git cat-file stopped answering")
            return None
        oid, kind, size = header
        content = self._read_exactly(int(size) + 1)[:-1]
        return oid, kind, content

    def _read_exactly(self, size: int) -> bytes:
        assert self._proc.stdout is not None
        chunks: list[bytes] = []
        while size > 0:
            chunk = self._proc.stdout.read(size)
            if not chunk:
                raise ExternalCommandError("git cat-file ended early")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
