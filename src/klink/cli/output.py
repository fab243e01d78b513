"""Output: ``--json`` prints machine output on stdout and nothing else; humans get tables.

Every command writes through these functions, never to ``sys.stdout`` directly, so that the
chat service can run the same handlers with their output going to a room: ``capture(sink)``
sends this context's output (both streams) to ``sink`` and makes the command non-interactive
(a question that would wait for a terminal is refused instead).
"""

from __future__ import annotations

import sys
from contextvars import ContextVar

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any, TextIO

_sink: ContextVar[TextIO | None] = ContextVar("klink_output_sink", default=None)


def capture(sink: TextIO) -> None:
    """Send this context's (this thread's) output to ``sink`` from now on."""
    _sink.set(sink)


def out() -> TextIO:
    return _sink.get() or sys.stdout


def errors() -> TextIO:
    return _sink.get() or sys.stderr


def interactive() -> bool:
    """Whether a question may be asked (a terminal, and not a chat room)."""
    return _sink.get() is None and sys.stdin.isatty()


def emit_json(value: Any) -> None:
    from klink.cli import jsonlite

    out().write(jsonlite.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    lines = [line.rstrip()]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    out().write("\n".join(lines) + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    from klink.cli import jsonlite

    return jsonlite.dumps(value, sort_keys=True)


def say(message: str) -> None:
    out().write(message + "\n")


def err(message: str) -> None:
    errors().write(message + "\n")
