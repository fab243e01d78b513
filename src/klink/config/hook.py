"""The pre-receive hook of every config repository: bad config never lands.

git runs it (``python -m klink.config.hook``) inside the bare repository with the pushed objects
in quarantine and the ref updates on stdin (``OLD NEW REF`` per line). For every updated branch
the files of the pushed tip are checked against the registry of ``klink.config.files`` with the
environment's provider (``git config klink.provider``). Any problem makes the hook exit 1, so git
rejects the whole push and nothing changes; each problem is one ``file: field: reason`` line,
which git shows to the pusher as ``remote: …``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from klink.config import files, gitcmd
from klink.config.gitcmd import ZERO_HASH, BlobReader
from klink.errors import KlinkError


def update_problems(git_dir: Path, lines: Iterable[str], provider: str) -> list[str]:
    problems: list[str] = []
    for line in lines:
        parts = line.split()
        if len(parts) != 3:
            continue
        _old, new, ref = parts
        if new == ZERO_HASH:
            problems.append(f"{ref}: deleting branches is not allowed")
            continue
        if not ref.startswith("refs/heads/"):
            problems.append(f"{ref}: only branches can be pushed")
            continue
        with BlobReader(git_dir) as reader:
            contents: dict[str, bytes | None] = {}
            for name in files.FILES:
                blob = reader.get(f"{new}:{name}")
                contents[name] = blob[2] if blob is not None and blob[1] == "blob" else None
        problems += [
            f"{files.describe(name, problem)}"
            for name, problem in files.tree_problems(contents, provider)
        ]
    return problems


def main() -> int:
    git_dir = Path.cwd()
    provider = (
        gitcmd.run(git_dir, ["config", "--get", "klink.provider"], check=False)
        .stdout.decode()
        .strip()
        or "aws"
    )
    try:
        problems = update_problems(git_dir, sys.stdin.read().splitlines(), provider)
    except KlinkError as exc:
        problems = [f"cannot check the push: {exc.message}"]
    except Exception as exc:  # the pusher sees one line, never a traceback
        problems = [f"cannot check the push: internal error ({type(exc).__name__})"]
    if not problems:
        return 0
    sys.stderr.write("klink: push rejected, the configuration is not valid:\n")
    for problem in problems:
        sys.stderr.write(f"klink:   {problem}\n")
    sys.stderr.flush()
    return 1


if __name__ == "__main__":
    sys.exit(main())
