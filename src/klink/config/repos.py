"""Config repositories on disk: one bare git repository per app+env, by intent.

``ConfigRepos(root)`` keeps ``{root}/{app}-{env}.git`` and answers what the API needs (create,
resolve a ref, read a file at a commit, page through the log, diff two commits) in Klink's
terms, raising Klink's errors. Every repository is created complete in a temporary directory
and renamed into place, so a half-made repository is never visible and two racing creations
leave one. Each refuses non-fast-forward pushes and ref deletions (deployed commits must stay
resolvable and the log is the audit trail) and runs Klink's pre-receive hook.

A file at a full commit hash never changes, so reads by full hash are cached in memory.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from klink.config import gitcmd
from klink.config.gitcmd import FULL_HASH_RE, BlobReader, check_ref
from klink.errors import ExternalCommandError, InvalidInput, NotFound
from klink.names import check_name

BRANCH = "main"
KLINK_IDENT = {
    "GIT_AUTHOR_NAME": "Klink",
    "GIT_AUTHOR_EMAIL": "klink@localhost",
    "GIT_COMMITTER_NAME": "Klink",
    "GIT_COMMITTER_EMAIL": "klink@localhost",
}
_FIELD_SEP = "\x1f"
_RECORD_SEP = "\x1e"
_LOG_FORMAT = f"%H{_FIELD_SEP}%an{_FIELD_SEP}%ae{_FIELD_SEP}%aI{_FIELD_SEP}%B{_RECORD_SEP}"


def hook_script() -> str:
    """The pre-receive hook: this Python runs ``klink.config.hook`` (no shell input in it)."""
    return f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m klink.config.hook\n"


@dataclass(frozen=True)
class Commit:
    hash: str
    author: str
    email: str
    date: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {
            "hash": self.hash,
            "author": self.author,
            "email": self.email,
            "date": self.date,
            "message": self.message,
        }


@dataclass(frozen=True)
class FileChange:
    file: str
    status: str  # added | modified | deleted
    diff: str
    before: bytes | None
    after: bytes | None


class _Cache:
    """A small LRU of immutable reads: (repo, full hash, file) → bytes or None."""

    def __init__(self, max_entries: int = 4096, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._data: OrderedDict[tuple[str, str, str], bytes | None] = OrderedDict()
        self._bytes = 0
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> tuple[bool, bytes | None]:
        with self._lock:
            if key not in self._data:
                return False, None
            self._data.move_to_end(key)
            return True, self._data[key]

    def put(self, key: tuple[str, str, str], value: bytes | None) -> None:
        with self._lock:
            if key in self._data:
                return
            self._data[key] = value
            self._bytes += len(value or b"")
            while len(self._data) > self._max_entries or self._bytes > self._max_bytes:
                _, old = self._data.popitem(last=False)
                self._bytes -= len(old or b"")


class _Readers:
    """A long-lived ``git cat-file --batch`` per repository (the most recently used few).

    Only objects named by full hash go through them: an object never changes, and git looks
    for new packs when an object is missing, so a long-lived reader never answers stale. Refs
    (``HEAD``, branches, ``HEAD~n``) are resolved by a fresh ``rev-parse`` first. This saves
    starting a git process per read.
    """

    def __init__(self, max_open: int = 32) -> None:
        self._open: OrderedDict[Path, tuple[BlobReader, threading.Lock]] = OrderedDict()
        self._max_open = max_open
        self._lock = threading.Lock()

    def _entry(self, path: Path) -> tuple[BlobReader, threading.Lock]:
        evicted = []
        with self._lock:
            entry = self._open.get(path)
            if entry is None:
                entry = self._open[path] = (BlobReader(path), threading.Lock())
            self._open.move_to_end(path)
            while len(self._open) > self._max_open:
                evicted.append(self._open.popitem(last=False)[1])
        for reader, lock in evicted:
            with lock:
                reader.close()
        return entry

    def _drop(self, path: Path, reader: BlobReader) -> None:
        with self._lock:
            if self._open.get(path, (None,))[0] is reader:
                del self._open[path]
        reader.close()

    def get(self, path: Path, names: list[str]) -> list[tuple[str, str, bytes] | None]:
        for attempt in range(2):
            reader, lock = self._entry(path)
            with lock:
                try:
                    return [reader.get(name) for name in names]
                except (ExternalCommandError, OSError, ValueError):
                    if attempt:
                        raise
            self._drop(path, reader)  # it died (or was closed); start a fresh one
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            entries = list(self._open.values())
            self._open.clear()
        for reader, lock in entries:
            with lock:
                reader.close()


class ConfigRepos:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache = _Cache()
        self.readers = _Readers()

    def close(self) -> None:
        self.readers.close()

    # Naming ------------------------------------------------------------------------------
    @staticmethod
    def name(app: str, env: str) -> str:
        check_name(app, "app")
        check_name(env, "env")
        return f"{app}-{env}"

    def path(self, app: str, env: str) -> Path:
        return self.root / f"{self.name(app, env)}.git"

    def existing(self, app: str, env: str) -> Path:
        path = self.path(app, env)
        if not (path / "HEAD").is_file():
            raise NotFound(f"no config repository {app}-{env}", field="repo")
        return path

    def all(self, app: str | None = None) -> list[tuple[str, str]]:
        """(app, env) of every repository, sorted; of one app if given."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            stem = entry.name.removesuffix(".git")
            a, sep, e = stem.partition("-")
            wanted = app is None or a == app
            if entry.name.endswith(".git") and sep and wanted and (entry / "HEAD").is_file():
                found.append((a, e))
        return sorted(found)

    # Creation ----------------------------------------------------------------------------
    def create(self, app: str, env: str, files: Mapping[str, bytes], *, provider: str) -> bool:
        """Create the repository with ``files`` as its first commit; False if it existed.

        An existing repository keeps its history; its settings and hook are refreshed when
        they differ (so a changed provider of the environment reaches push-time validation).
        Creators take turns on a lock of the root directory (``flock``: between threads and
        processes alike; creations are rare and short), so any number of concurrent calls
        leave one creator and never race on git's own config lock.
        """
        path = self.path(app, env)
        if (path / "HEAD").is_file() and self._configured(path, provider):
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        with _flocked(self.root):
            if (path / "HEAD").is_file():
                if not self._configured(path, provider):
                    self._configure(path, provider)
                return False
            staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=self.root))
            try:
                gitcmd.run(staging, ["init", "--quiet", "--bare", f"--initial-branch={BRANCH}"])
                self._configure(staging, provider)
                self._first_commit(staging, files, app, env)
                staging.rename(path)
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
        return True

    def _configured(self, path: Path, provider: str) -> bool:
        try:
            hook = (path / "hooks" / "pre-receive").read_text()
        except OSError:
            return False
        current = gitcmd.run(path, ["config", "--get", "klink.provider"], check=False)
        return hook == hook_script() and current.stdout.decode().strip() == provider

    def _configure(self, path: Path, provider: str) -> None:
        for key, value in (
            ("klink.provider", provider),
            ("receive.denyNonFastForwards", "true"),
            ("receive.denyDeletes", "true"),
            ("http.receivepack", "true"),
            ("core.logAllRefUpdates", "true"),
        ):
            gitcmd.run(path, ["config", key, value])
        hook = path / "hooks" / "pre-receive"
        hook.parent.mkdir(exist_ok=True)
        tmp = hook.with_suffix(".tmp")
        tmp.write_text(hook_script())
        tmp.chmod(0o755)
        tmp.replace(hook)

    def _first_commit(self, path: Path, files: Mapping[str, bytes], app: str, env: str) -> None:
        lines = []
        for name in sorted(files):
            blob = gitcmd.run(path, ["hash-object", "-w", "--stdin"], stdin=files[name])
            lines.append(f"100644 blob {blob.stdout.decode().strip()}\t{name}\n")
        tree = gitcmd.run(path, ["mktree"], stdin="".join(lines).encode()).stdout.decode().strip()
        message = f"Initial configuration of {app} in {env}\n".encode()
        commit = gitcmd.run(path, ["commit-tree", tree], stdin=message, env=KLINK_IDENT)
        head = commit.stdout.decode().strip()
        gitcmd.run(path, ["update-ref", f"refs/heads/{BRANCH}", head, ""])

    # Reading -----------------------------------------------------------------------------
    def resolve(self, app: str, env: str, ref: str, field: str = "at") -> str:
        """The 40-hex commit ``ref`` names; InvalidInput (bad syntax), NotFound (no commit)."""
        path = self.existing(app, env)
        check_ref(ref, field)
        done = gitcmd.run(
            path,
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
            check=False,
        )
        commit = done.stdout.decode().strip()
        if done.returncode != 0 or not FULL_HASH_RE.fullmatch(commit):
            raise NotFound(f"no commit {ref!r} in {app}-{env}", field=field)
        return commit

    def read(self, app: str, env: str, ref: str, name: str) -> tuple[str, bytes | None]:
        """(commit, the file's bytes or None when the commit lacks it) at ``ref``."""
        path = self.existing(app, env)
        check_ref(ref)
        if FULL_HASH_RE.fullmatch(ref):
            hit, value = self.cache.get((str(path), ref, name))
            if hit:
                return ref, value
            commit = ref
        else:
            commit = self.resolve(app, env, ref)
        found, blob = self.readers.get(path, [f"{commit}^{{commit}}", f"{commit}:{name}"])
        if found is None or found[1] != "commit":
            raise NotFound(f"no commit {ref!r} in {app}-{env}", field="at")
        content = blob[2] if blob is not None and blob[1] == "blob" else None
        self.cache.put((str(path), commit, name), content)
        return commit, content

    def log(
        self, app: str, env: str, *, limit: int, before: str | None = None
    ) -> tuple[list[Commit], str | None]:
        """Up to ``limit`` commits newest first (from HEAD, or older than ``before``), and the
        cursor of the next page (None at the end of history)."""
        path = self.existing(app, env)
        if before is None:
            starts = [self.resolve(app, env, "HEAD", "before")]
        else:
            commit = self.resolve(app, env, before, "before")
            parents = gitcmd.run(path, ["rev-list", "--parents", "-n", "1", commit])
            starts = parents.stdout.decode().split()[1:]
            if not starts:
                return [], None
        done = gitcmd.run(
            path,
            ["log", "--no-color", f"--format={_LOG_FORMAT}", "-n", str(limit + 1), *starts],
        )
        commits = []
        for record in done.stdout.decode(errors="replace").split(_RECORD_SEP):
            record = record.lstrip("\n")
            if not record:
                continue
            hash_, author, email, date, message = record.split(_FIELD_SEP, 4)
            commits.append(Commit(hash_, author, email, date, message.rstrip("\n")))
        more = len(commits) > limit
        commits = commits[:limit]
        return commits, commits[-1].hash if more else None

    def diff(self, app: str, env: str, old: str, new: str) -> list[FileChange]:
        """Per changed file: status, unified diff text, content before and after."""
        path = self.existing(app, env)
        done = gitcmd.run(
            path,
            [
                "diff",
                "--no-color",
                "--no-ext-diff",
                "--no-renames",
                "--name-status",
                "-z",
                old,
                new,
            ],
        )
        parts = [p for p in done.stdout.decode(errors="replace").split("\0") if p]
        statuses = {"A": "added", "M": "modified", "D": "deleted", "T": "modified"}
        changes = []
        for code, name in zip(parts[::2], parts[1::2], strict=True):
            text = gitcmd.run(
                path,
                ["diff", "--no-color", "--no-ext-diff", "--no-renames", old, new, "--", name],
            ).stdout.decode(errors="replace")
            changes.append(
                FileChange(
                    file=name,
                    status=statuses.get(code[:1], "modified"),
                    diff=text,
                    before=self.read(app, env, old, name)[1],
                    after=self.read(app, env, new, name)[1],
                )
            )
        return changes

    def check_writable(self) -> bool:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            gitcmd.run(self.root, ["--version"])
        except (OSError, ExternalCommandError):
            return False
        return True


@contextmanager
def _flocked(directory: Path) -> Iterator[None]:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def render_template(value: Any, app: str, env: str) -> Any:
    """Substitute ``{{app}}``/``{{env}}`` in every string (keys too) of a defaults template."""
    if isinstance(value, str):
        return value.replace("{{app}}", app).replace("{{env}}", env)
    if isinstance(value, list):
        return [render_template(item, app, env) for item in value]
    if isinstance(value, dict):
        return {
            render_template(k, app, env): render_template(v, app, env) for k, v in value.items()
        }
    return value


def require_hash(value: str, field: str) -> str:
    if not FULL_HASH_RE.fullmatch(value):
        raise InvalidInput(f"{field} must be a 40-hex commit hash", field=field)
    return value
