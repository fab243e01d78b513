"""Running external commands (git, build and bake commands, packer) with a time limit.

Commands are argument lists, never a shell line built from input (a user's build command is
one argument of ``sh -c``). Each runs in its own process group, so that on timeout the whole
group is stopped: SIGTERM first (Packer cleans up what it created when asked to stop), then
SIGKILL after ``grace`` seconds. Output (stdout and stderr merged) goes line by line to
``on_line`` as it comes. Shared by the build and bake services.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from klink.errors import ExternalCommandError

TAIL_LINES = 20


class CommandTimeout(ExternalCommandError):
    code = "timeout"


class CommandFailed(ExternalCommandError):
    pass


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float,
    on_line: Callable[[str], None] = lambda _line: None,
    grace: float = 5.0,
    what: str | None = None,
) -> deque[str]:
    """Run ``argv``; return its last output lines. Raise CommandFailed on a non-zero exit and
    CommandTimeout when it outlives ``timeout`` seconds (its process group is then stopped)."""
    what = what or argv[0]
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise CommandFailed(f"cannot run {what}: {exc.strerror or exc}") from None

    def pump() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            tail.append(line)
            on_line(line)

    reader = threading.Thread(target=pump, name=f"output of {what}", daemon=True)
    reader.start()
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop_group(process, grace)
        reader.join(timeout=grace + 5)
        raise CommandTimeout(
            f"{what} did not finish within {timeout:g} seconds and was stopped",
            output="\n".join(tail),
        ) from None
    except BaseException:
        _stop_group(process, 0)
        raise
    reader.join(timeout=10)
    # The leader has exited; anything it left running in its group goes too.
    _signal_group(process.pid, signal.SIGKILL)
    if code != 0:
        raise CommandFailed(f"{what} failed (exit code {code})", output="\n".join(tail))
    return tail


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _stop_group(process: subprocess.Popen[bytes], grace: float) -> None:
    if grace > 0:
        _signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    _signal_group(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
