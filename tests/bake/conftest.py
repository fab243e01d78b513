"""Bake tests: a real server, real git sources, the real image store and local daemon."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx

from tests.build.conftest import make_source_repo, put_app, put_env, start_server, stream

__all__ = ["hello_app", "make_source_repo", "put_env", "start_server", "stream"]

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello"
START = "cd opt/hello && exec python3 hello.py"


def hello_app(http: httpx.Client, tmp: Path, name: str = "hello", **metadata: Any) -> Path:
    """The example app ``examples/hello`` in a real git repository, as application ``name``."""
    files = {f.name: f.read_text() for f in HELLO.iterdir() if f.is_file()}
    repo = make_source_repo(tmp / f"src-{name}", files)
    shutil.rmtree(repo / "dist", ignore_errors=True)
    put_app(
        http,
        name,
        srcRepo=str(repo),
        buildCommand="sh build.sh",
        startCommand=START,
        **metadata,
    )
    return repo
