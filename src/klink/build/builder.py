"""The local builder: clone the app's source at a ref, run its build command, keep the file.

Steps, each with what can go wrong named: clone ``srcRepo`` (any git URL or path) into a clean
temporary folder and check out the ref (default HEAD); run ``buildCommand`` with ``sh -c`` in
that checkout, in its own process group, within the build time limit; take the file it left at
``dist/artifact.tar.gz`` (or ``artifactPath``) and publish it as the next version (or the one
the build wrote to ``dist/VERSION``). The temporary checkout is always removed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from klink.build import process
from klink.build.store import Artifact, ArtifactStore
from klink.build.versions import version_of
from klink.errors import ExternalCommandError, InvalidInput

DEFAULT_ARTIFACT_PATH = "dist/artifact.tar.gz"
GIT_TIMEOUT = 300.0


@dataclass(frozen=True)
class BuildRequest:
    app: str
    src_repo: str
    build_command: str
    ref: str = "HEAD"
    artifact_path: str = DEFAULT_ARTIFACT_PATH
    major_minor: str | None = None

    @classmethod
    def from_metadata(cls, app: str, metadata: Mapping[str, Any], ref: str | None) -> BuildRequest:
        src = metadata.get("srcRepo")
        command = metadata.get("buildCommand")
        if not isinstance(src, str) or not src.strip():
            raise InvalidInput(f"application {app} has no srcRepo metadata", field="srcRepo")
        if not isinstance(command, str) or not command.strip():
            raise InvalidInput(
                f"application {app} has no buildCommand metadata", field="buildCommand"
            )
        artifact_path = str(metadata.get("artifactPath") or DEFAULT_ARTIFACT_PATH)
        pure = PurePosixPath(artifact_path)
        if pure.is_absolute() or ".." in pure.parts:
            raise InvalidInput(
                "artifactPath must be a relative path inside the checkout", field="artifactPath"
            )
        ref = ref or "HEAD"
        if ref.startswith("-") or not ref.strip():
            raise InvalidInput(f"ref {ref!r} is not a git ref", field="ref")
        version = metadata.get("version")
        return cls(
            app=app,
            src_repo=src,
            build_command=command,
            ref=ref,
            artifact_path=artifact_path,
            major_minor=version if isinstance(version, str) else None,
        )


def clone_argv(src: str, dest: Path) -> list[str]:
    # "--" so that a srcRepo starting with "-" is never read as an option.
    return ["git", "clone", "--quiet", "--no-hardlinks", "--", src, str(dest)]


def checkout_argv(dest: Path, ref: str) -> list[str]:
    return ["git", "-C", str(dest), "checkout", "--quiet", "--detach", ref, "--"]


def url_secrets(src: str) -> list[str]:
    """The password (or token) of a ``scheme://user:password@host/…`` source, to be masked."""
    parts = urlsplit(src)
    secrets = [parts.password] if parts.password else []
    if parts.username and not parts.password and parts.scheme in ("http", "https"):
        secrets.append(parts.username)  # a bare token as the user name
    return [unquote(s) for s in secrets] + secrets


def masked(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<sensitive>")
    return text


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def build(
    request: BuildRequest,
    *,
    store: ArtifactStore,
    number: int,
    timeout: float,
    work_root: Path,
    log: Callable[[str], None],
    clock: Callable[[], datetime],
) -> tuple[Artifact, str]:
    """Run one build; return the stored artifact and the commit built."""
    hidden = url_secrets(request.src_repo)
    try:
        return _build(
            request,
            store=store,
            number=number,
            timeout=timeout,
            work_root=work_root,
            log=lambda line: log(masked(line, hidden)),
            clock=clock,
        )
    except ExternalCommandError as exc:
        exc.message = masked(exc.message, hidden)
        exc.output = masked(exc.output, hidden)
        raise


def _build(
    request: BuildRequest,
    *,
    store: ArtifactStore,
    number: int,
    timeout: float,
    work_root: Path,
    log: Callable[[str], None],
    clock: Callable[[], datetime],
) -> tuple[Artifact, str]:
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"build-{request.app}-", dir=work_root) as temp:
        checkout = Path(temp) / "src"
        log(f"cloning {request.src_repo} at {request.ref}")
        process.run(
            clone_argv(request.src_repo, checkout),
            env=_git_env(),
            timeout=GIT_TIMEOUT,
            on_line=log,
            what="git clone",
        )
        if request.ref != "HEAD":
            process.run(
                checkout_argv(checkout, request.ref),
                env=_git_env(),
                timeout=GIT_TIMEOUT,
                on_line=log,
                what=f"git checkout {request.ref}",
            )
        commit = process.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"], timeout=GIT_TIMEOUT, what="git"
        )[-1].strip()
        provisional = version_of(request.major_minor, number)
        env = {
            **os.environ,
            "KLINK_APP": request.app,
            "KLINK_BUILD_NUMBER": str(number),
            "KLINK_VERSION": provisional,
            "KLINK_COMMIT": commit,
        }
        log(f"building {request.app} at {commit[:12]}: {request.build_command}")
        process.run(
            ["sh", "-c", request.build_command],
            cwd=checkout,
            env=env,
            timeout=timeout,
            on_line=log,
            what="the build command",
        )
        artifact_file = checkout / request.artifact_path
        if not artifact_file.is_file():
            raise ExternalCommandError(f"the build command left no file at {request.artifact_path}")
        written_path = checkout / "dist" / "VERSION"
        written = written_path.read_text() if written_path.is_file() else None
        version = version_of(request.major_minor, number, written)
        artifact = store.put(
            request.app,
            version,
            _chunks(artifact_file),
            sha256=None,
            at=clock(),
            source="build",
        )
        log(f"stored {artifact.filename} (sha256 {artifact.sha256}, {artifact.size} bytes)")
        return artifact, commit


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            yield chunk
