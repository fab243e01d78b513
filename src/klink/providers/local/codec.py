"""JSON encoding of the provider's frozen dataclasses, for the daemon's API and its state file.

Dataclasses travel as ``{"__dc__": "Group", …fields}`` (classes of ``providers/base.py`` only),
datetimes as ``{"__dt__": iso}``, tuples and frozensets tagged so that decoding gives back
values equal to the originals. Errors travel as ``{"error": {"code", "message", "field"}}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from klink import errors
from klink.providers import base

_CLASSES: dict[str, type[Any]] = {
    name: cls
    for name, cls in vars(base).items()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls)
}

_ERRORS: dict[str, type[errors.KlinkError]] = {
    cls.code: cls
    for cls in (
        errors.InvalidInput,
        errors.NotFound,
        errors.Conflict,
        errors.Throttled,
        errors.ProviderError,
    )
}


def encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"__dc__": type(value).__name__}
        for f in dataclasses.fields(value):
            out[f.name] = encode(getattr(value, f.name))
        return out
    if isinstance(value, datetime):
        return {"__dt__": value.isoformat()}
    if isinstance(value, frozenset):
        return {"__fs__": sorted(encode(v) for v in value)}
    if isinstance(value, tuple):
        return {"__t__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__dt__" in value:
        return datetime.fromisoformat(value["__dt__"])
    if "__fs__" in value:
        return frozenset(decode(v) for v in value["__fs__"])
    if "__t__" in value:
        return tuple(decode(v) for v in value["__t__"])
    if "__dc__" in value:
        cls = _CLASSES.get(value["__dc__"])
        if cls is None:
            raise errors.InvalidInput(f"unknown type {value['__dc__']!r}", field="__dc__")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: decode(v) for k, v in value.items() if k in names})
    return {k: decode(v) for k, v in value.items()}


def error_from_json(status: int, body: Any) -> errors.KlinkError:
    detail = body.get("error") if isinstance(body, dict) else None
    if not isinstance(detail, dict):
        return errors.ProviderError(f"local cloud answered {status}")
    cls = _ERRORS.get(str(detail.get("code")), errors.ProviderError)
    return cls(str(detail.get("message", "")), field=detail.get("field"))
