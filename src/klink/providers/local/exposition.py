"""Prometheus's text exposition format, rewritten: a ``group`` label on the balancer's servers.

HAProxy's exporter labels a server's series with ``proxy`` (the backend) and ``server`` (the
slot: ``s0``, ``s1``, …) only, and which deployment group a slot serves changes at run time.
``add_group_labels(text, groups)`` adds ``group="<name>"`` to every ``haproxy_server_*`` sample
whose (proxy, server) is in ``groups`` and leaves everything else byte for byte: comments
(``# HELP``, ``# TYPE``), blank lines, other series, samples of servers in no group, and any
line it cannot parse. A sample's labels are parsed with the format's escapes (``\\\\``,
``\\"``, ``\\n`` in values, which may hold ``,``, ``}`` or ``=``) and written back escaped;
a ``group`` label that a series already had is replaced, never doubled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

GROUP_LABEL = "group"
SERVER_PREFIX = "haproxy_server_"

_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_VALUE = r'"((?:[^"\\]|\\.)*)"'  # a quoted value: anything but " and \, or an escape
_PAIR = re.compile(rf"[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*{_VALUE}[ \t]*")
_ESCAPE = re.compile(r"\\(.)")
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    return _ESCAPE.sub(lambda m: _UNESCAPE.get(m.group(1), m.group(0)), raw)


def parse_labels(line: str, start: int) -> tuple[list[tuple[str, str]], int] | None:
    """The labels of ``line`` from its ``{`` at ``start``: (pairs, index after ``}``), or None
    when the text is not a well-formed label set."""
    pairs: list[tuple[str, str]] = []
    i = start + 1
    while True:
        match = _PAIR.match(line, i)
        if match is None:
            break
        pairs.append((match.group(1), _unescape(match.group(2))))
        i = match.end()
        if i < len(line) and line[i] == ",":
            i += 1
        elif not (i < len(line) and line[i] == "}"):
            return None
    while i < len(line) and line[i] in " \t":
        i += 1
    if i < len(line) and line[i] == "}":
        return pairs, i + 1
    return None


def _relabelled(line: str, groups: Mapping[tuple[str, str], str]) -> str:
    name = _METRIC.match(line)
    brace = name.end() if name else 0
    if brace >= len(line) or line[brace] != "{":
        return line  # no labels, so no server
    parsed = parse_labels(line, brace)
    if parsed is None:
        return line
    pairs, end = parsed
    labels = dict(pairs)
    group = groups.get((labels.get("proxy", ""), labels.get("server", "")))
    if group is None:
        return line
    kept = [(k, v) for k, v in pairs if k != GROUP_LABEL] + [(GROUP_LABEL, group)]
    rendered = ",".join(f'{k}="{escape(v)}"' for k, v in kept)
    return f"{line[:brace]}{{{rendered}}}{line[end:]}"


def add_group_labels(text: str, groups: Mapping[tuple[str, str], str]) -> str:
    """``text`` with ``group`` on the samples of the servers in ``groups`` ((proxy, server) →
    group name)."""
    if not groups:
        return text
    # A line can only be a mapped server's if one of their names is in it, quoted as a label
    # value is: the others (free slots, most of the text) are passed on without parsing.
    quoted = tuple({f'"{escape(server)}"' for _proxy, server in groups})

    def maybe(line: str) -> bool:
        return line.startswith(SERVER_PREFIX) and any(q in line for q in quoted)

    # Lines end at "\n" only (the format's one separator; a value may hold other breaks).
    return "\n".join(
        _relabelled(line, groups) if maybe(line) else line for line in text.split("\n")
    )
