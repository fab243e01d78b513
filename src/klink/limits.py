"""Input limits shared by every boundary: the HTTP services and config push validation.

One JSON policy, so that nothing is stored that would break a later read: a document is nested
at most ``MAX_DEPTH`` levels (the document itself is level 1), its strings (keys too) are valid
Unicode (no lone surrogates, which JSON's ``\\ud800`` escapes can produce and no UTF-8 encoder
can write back), its numbers are finite (no ``NaN``, ``Infinity``, ``1e999``) and its integers
fit in 64 bits (what PostgreSQL, SQLite and every JSON client agree on). ``loads`` parses under
these rules and ``check`` applies them to an already parsed value (YAML, a model's input); both
raise ``InvalidInput`` naming the offending value's path (``metadata.tags[2]``).

This module imports only the standard library and ``klink.errors``: git's pre-receive hook
imports it, and starts fast.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from klink.errors import InvalidInput

MAX_DEPTH = 64
MAX_INT = 2**63 - 1
MIN_INT = -(2**63)
# The largest group a deployment may ask for (min, max, desired capacity).
MAX_INSTANCES = 1000

_SURROGATE = re.compile("[\ud800-\udfff]")


class _Refused(ValueError):
    """Raised from inside ``json.loads`` hooks; not a syntax error."""


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise _Refused(f"the integer {text[:40]}… is out of range (64-bit signed)") from None


def _constant(text: str) -> float:
    return float(text)  # NaN, Infinity: refused by ``check``, which names their path


def path_of(parts: tuple[str | int, ...]) -> str:
    """``("metadata", "tags", 2)`` → ``metadata.tags[2]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON under the policy; InvalidInput (field = the value's path) otherwise."""
    try:
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        data = json.loads(raw, parse_int=_int, parse_constant=_constant)
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"not UTF-8 ({exc.reason})") from None
    except RecursionError:
        raise InvalidInput(f"nested too deep (at most {max_depth} levels)") from None
    except _Refused as exc:
        raise InvalidInput(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            code="invalid_json",
        ) from None
    check(data, max_depth=max_depth)
    return data


def check(value: Any, *, max_depth: int = MAX_DEPTH, root: tuple[str | int, ...] = ()) -> None:
    """Apply the policy to a parsed value (iteratively: a deep value cannot overflow the
    stack); InvalidInput naming the first offending path."""
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(value, root, 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise InvalidInput(
                    f"nested too deep (at most {max_depth} levels)", field=path_of(path) or None
                )
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str) and _SURROGATE.search(key):
                        raise InvalidInput(
                            "a key is not valid Unicode (a lone surrogate)",
                            field=path_of(path) or None,
                        )
                    stack.append((child, (*path, str(key)), depth + 1))
            else:
                stack.extend((child, (*path, i), depth + 1) for i, child in enumerate(item))
        elif isinstance(item, str):
            if _SURROGATE.search(item):
                raise InvalidInput(
                    "not valid Unicode (a lone surrogate)", field=path_of(path) or None
                )
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not MIN_INT <= item <= MAX_INT:
                raise InvalidInput("out of range (64-bit signed)", field=path_of(path) or None)
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput("out of range (numbers must be finite)", field=path_of(path) or None)
