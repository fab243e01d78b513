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
from itertools import accumulate
from typing import Any

from klink.errors import InvalidInput

MAX_DEPTH = 64
MAX_INT = 2**63 - 1
MIN_INT = -(2**63)
# The largest group a deployment may ask for (min, max, desired capacity).
MAX_INSTANCES = 1000

_SURROGATE = re.compile("[\ud800-\udfff]")
# For the fast checks of ``loads``: the bytes that say how deep a document is, what is left of
# a string once those are kept, a surrogate's escape.
_STRUCTURE = b'[]{}"'
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in _STRUCTURE)
_QUOTED = re.compile(rb'"[^"]*"')
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# Digits all made "0", to find long numbers with substring searches (C speed, no regex).
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_SUSPECT_NUMBERS = (
    b"0" * 19,  # 19 digits and more: maybe beyond 64 bits
    *(e + sign + b"000" for e in (b"e", b"E") for sign in (b"", b"+", b"-")),  # 1e308 and up
)
_DELTA = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
# Deeper than this, a refused document is not parsed to name the path (the stack would not
# mind, but nobody needs the path of the 10,000th bracket).
_NAME_DEPTH = 500


class _Refused(ValueError):
    """Raised from inside ``json.loads`` hooks; not a syntax error."""


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise _Refused(f"the integer {text[:40]}… is out of range (64-bit signed)") from None


def _checked_int(text: str) -> int:
    number = _int(text)
    if not MIN_INT <= number <= MAX_INT:
        raise _Refused(text)
    return number


def _checked_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _Refused(text)
    return number


def _refused_constant(text: str) -> float:
    raise _Refused(text)


def path_of(parts: tuple[str | int, ...]) -> str:
    """``("metadata", "tags", 2)`` → ``metadata.tags[2]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _depth(raw: bytes) -> int:
    """How deep the brackets outside strings go, at C speed: drop the escaped backslashes,
    then the escaped quotes (what is left of an escape cannot hide a quote); keep brackets
    and quotes only; drop adjacent quote pairs (which keeps every bracket on its side of the
    quotes); drop what is left quoted; count."""
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = unescaped.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    brackets = _QUOTED.sub(b"", kept)
    return max(accumulate(map(_DELTA.__getitem__, brackets)), default=0)


def _name_the_path(text: str, max_depth: int) -> None:
    """Parse without the checks and walk the value, which raises naming the path."""
    try:
        data = json.loads(text, parse_int=_int, parse_constant=float)
    except (ValueError, RecursionError):
        return
    check(data, max_depth=max_depth)


def _suspect_number(raw: bytes) -> bool:
    """True for every document with a number that could be out of range (and for some whose
    strings only look so: the slow path then decides)."""
    if b"NaN" in raw or b"Infinity" in raw:
        return True
    zeroed = raw.translate(_DIGITS_TO_ZERO)
    return any(pattern in zeroed for pattern in _SUSPECT_NUMBERS)


def check_raw(raw: bytes, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse what ``loads`` refuses without parsing when the fast checks can tell (no
    surrogate escape, no number that could be out of range): the service boundary's path,
    where FastAPI parses the body anyway. A syntax error is left to that parser."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"not UTF-8 ({exc.reason})") from None
    if _depth(raw) > max_depth or _SURROGATE_ESCAPE.search(raw) or _suspect_number(raw):
        try:
            loads(raw, max_depth=max_depth)
        except InvalidInput as exc:
            if exc.code == "invalid_json":
                return
            raise


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON under the policy; InvalidInput (field = the value's path) otherwise.

    The checks run at C speed (regular expressions, the decoder's number hooks, one pass over
    the brackets); only a refused document is walked in Python, to name the offending path.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"not UTF-8 ({exc.reason})") from None
    data_bytes = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    too_deep = InvalidInput(f"nested too deep (at most {max_depth} levels)")
    depth = _depth(data_bytes)
    if depth > max_depth:
        if depth <= _NAME_DEPTH:
            _name_the_path(text, max_depth)
        raise too_deep
    try:
        data = json.loads(
            text,
            parse_int=_checked_int,
            parse_float=_checked_float,
            parse_constant=_refused_constant,
        )
    except _Refused as exc:
        _name_the_path(text, max_depth)
        raise InvalidInput(str(exc)) from None  # the integer had too many digits to convert
    except RecursionError:
        raise too_deep from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            code="invalid_json",
        ) from None
    if _SURROGATE_ESCAPE.search(data_bytes):
        check(data, max_depth=max_depth)  # a lone surrogate, or a pair (then nothing is wrong)
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
