"""JSON for the CLI through CPython's own C accelerators (``_json``), without ``json``.

``import json`` costs about 4 ms of start-up, nearly all of it ``re`` (and ``enum`` under it),
which the json package needs only for its pure-Python fallbacks. The CLI reads and writes small
documents; the C scanner and string encoder that ``json`` itself uses do that, and ``dumps``
below prints exactly what ``json.dumps`` prints for the options the CLI uses (a test compares
them). Anywhere else in Klink, use ``json``.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
_WHITESPACE = " \t\n\r"


class _Context:
    """What the C scanner reads from a ``json.JSONDecoder``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo: dict[str, str] = {}


_scan = _json.make_scanner(_Context())  # type: ignore[arg-type]  # a decoder, as far as C sees
_string = _json.encode_basestring_ascii


def loads(text: str | bytes) -> Any:
    """As ``json.loads``; a document that is not JSON raises ValueError."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as stop:
        raise ValueError(f"not JSON: expecting a value at character {stop.value}") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"not JSON: extra data at character {end}")
    return value


def dumps(
    value: Any,
    *,
    indent: int | None = None,
    sort_keys: bool = False,
    default: Callable[[Any], Any] | None = None,
) -> str:
    """As ``json.dumps`` with these options (and the defaults of the others)."""
    parts: list[str] = []
    _encode(value, parts, indent, sort_keys, default, 0)
    return "".join(parts)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int | float):
        return _number(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _number(value: int | float) -> str:
    if isinstance(value, int):
        return int.__repr__(value)
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _encode(
    value: Any,
    parts: list[str],
    indent: int | None,
    sort_keys: bool,
    default: Callable[[Any], Any] | None,
    level: int,
) -> None:
    if isinstance(value, str):
        parts.append(_string(value))
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int | float):
        parts.append(_number(value))
    elif isinstance(value, list | tuple | dict):
        items = list(value.items()) if isinstance(value, dict) else list(value)
        opener, closer = ("{", "}") if isinstance(value, dict) else ("[", "]")
        if not items:
            parts.append(opener + closer)
            return
        if isinstance(value, dict):
            if sort_keys:
                items.sort(key=lambda item: item[0])  # by the keys themselves, as json does
            items = [(_key(k), v) for k, v in items]
        inner = "\n" + " " * (indent * (level + 1)) if indent is not None else ""
        separator = "," + inner if indent is not None else ", "
        parts.append(opener + inner)
        for number, item in enumerate(items):
            if number:
                parts.append(separator)
            if isinstance(value, dict):
                parts.append(_string(item[0]) + ": ")
                item = item[1]
            _encode(item, parts, indent, sort_keys, default, level + 1)
        parts.append(("\n" + " " * (indent * level) if indent is not None else "") + closer)
    elif default is not None:
        _encode(default(value), parts, indent, sort_keys, default, level)
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
