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

from collections.abc import Mapping

GROUP_LABEL = "group"
SERVER_PREFIX = "haproxy_server_"

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:")
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def parse_labels(line: str, start: int) -> tuple[list[tuple[str, str]], int] | None:
    """The labels of ``line`` from its ``{`` at ``start``: (pairs, index after ``}``), or None
    when the text is not a well-formed label set."""
    pairs: list[tuple[str, str]] = []
    i = start + 1
    n = len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i < n and line[i] == "}":
            return pairs, i + 1
        begin = i
        while i < n and line[i] in _NAME_CHARS and line[i] != ":":
            i += 1
        name = line[begin:i]
        while i < n and line[i] in " \t":
            i += 1
        if not name or name[0].isdigit() or i + 1 >= n or line[i] != "=":
            return None
        i += 1
        while i < n and line[i] in " \t":
            i += 1
        if i >= n or line[i] != '"':
            return None
        i += 1
        value: list[str] = []
        while i < n and line[i] != '"':
            if line[i] == "\\" and i + 1 < n:
                value.append(_UNESCAPE.get(line[i + 1], line[i : i + 2]))
                i += 2
            else:
                value.append(line[i])
                i += 1
        if i >= n:
            return None
        pairs.append((name, "".join(value)))
        i += 1
        while i < n and line[i] in " \t":
            i += 1
        if i < n and line[i] == ",":
            i += 1
        elif not (i < n and line[i] == "}"):
            return None


def _relabelled(line: str, groups: Mapping[tuple[str, str], str]) -> str:
    brace = len(SERVER_PREFIX)
    while brace < len(line) and line[brace] in _NAME_CHARS:
        brace += 1
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
    # Lines end at "\n" only (the format's one separator; a value may hold other breaks).
    return "\n".join(
        _relabelled(line, groups) if line.startswith(SERVER_PREFIX) else line
        for line in text.split("\n")
    )
