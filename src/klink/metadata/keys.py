"""The metadata keys other services rely on, and how each is checked.

Metadata is schema-less JSON: any top-level key may be set. The keys below mean something to
Klink, so a value of the wrong shape is refused (400 naming the key) instead of failing a
deployment later. README.md documents them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from klink.deploy import rules
from klink.errors import InvalidInput
from klink.names import is_valid_name

KEY_RULE = r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$"
_KEY_RE = re.compile(KEY_RULE)
RESERVED_KEYS = frozenset({"history"})  # path segments of the API


def check_key(key: str) -> str:
    if not _KEY_RE.fullmatch(key) or key in RESERVED_KEYS:
        raise InvalidInput(
            f"key {key!r} must match {KEY_RULE} and not be one of {sorted(RESERVED_KEYS)}",
            field="key",
        )
    return key


def _string(key: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{key} must be a non-empty string", field=key)


def _contact(key: str, value: Any) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+", value):
        raise InvalidInput(f"{key} must be an e-mail address (who to call)", field=key)


def _blocked(key: str, value: Any) -> None:
    if value is None:
        return
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("user"), str)
        or not isinstance(value.get("reason"), str)
    ):
        raise InvalidInput(f'{key} must be null or {{"user": "...", "reason": "..."}}', field=key)


def _string_list(key: str, value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{key} must be a list of strings", field=key)


def _rooms(key: str, value: Any) -> None:
    if not isinstance(value, dict) or not all(
        is_valid_name(env) and isinstance(rooms, list) and all(isinstance(r, str) for r in rooms)
        for env, rooms in value.items()
    ):
        raise InvalidInput(
            f'{key} must map environment names to lists of rooms, e.g. {{"prod": ["#search"]}}',
            field=key,
        )


def _major_minor(key: str, value: Any) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"\d+\.\d+", value):
        hint = " (a JSON string: quote it, '\"3.14\"')" if isinstance(value, int | float) else ""
        raise InvalidInput(f'{key} must be a string MAJOR.MINOR, e.g. "3.14"{hint}', field=key)


def _provider(key: str, value: Any) -> None:
    if value not in ("local", "aws"):
        raise InvalidInput(f'{key} must be "local" or "aws"', field=key)


def _account(key: str, value: Any) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"\d{12}", value):
        raise InvalidInput(f"{key} must be a 12-digit AWS account id", field=key)


def _role_arn(key: str, value: Any) -> None:
    if not isinstance(value, str) or not re.fullmatch(
        r"arn:aws[a-z-]*:iam::\d{12}:role/\S+", value
    ):
        raise InvalidInput(
            f"{key} must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", field=key
        )


def _url(key: str, value: Any) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        raise InvalidInput(f"{key} must be an http(s) URL", field=key)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise InvalidInput(f"{key} must be an http(s) URL with a valid port", field=key) from None
    if not parts.hostname:
        raise InvalidInput(f"{key} must be an http(s) URL with a host", field=key)


def _object(key: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise InvalidInput(f"{key} must be a JSON object", field=key)


def _bool(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise InvalidInput(f"{key} must be true or false", field=key)


def _defaults(key: str, value: Any) -> None:
    files = ("application-properties.json", "deployment-params.json", "launch-data.json")
    if not isinstance(value, dict) or not all(k in files for k in value):
        raise InvalidInput(
            f"{key} must be an object whose keys are among {', '.join(files)}", field=key
        )


def _release(parse: Callable[[Any, str], Any]) -> Callable[[str, Any], None]:
    """A release rule (approvals, windows, freezes, promotesFrom), checked by the deploy
    service's own parser so that both services read a value alike."""

    def check(key: str, value: Any) -> None:
        parse(value, key)

    return check


def _release_rules() -> Mapping[str, Callable[[str, Any], None]]:
    return {
        "approvals": _release(rules.approvals),
        "windows": _release(rules.windows),
        "freezes": _release(rules.freezes),
        "promotesFrom": _release(rules.promotes_from),
    }


Check = Callable[[str, Any], None]

APPLICATION_KEYS: Mapping[str, Check] = {
    "contact": _contact,
    "blocked": _blocked,
    "srcRepo": _string,
    "buildCommand": _string,
    "artifactPath": _string,
    "version": _major_minor,
    "bakeCommands": _string_list,
    "startCommand": _string,
    "deploymentRooms": _rooms,
    "instructions": _string,
}

ENVIRONMENT_KEYS: Mapping[str, Check] = {
    "provider": _provider,
    "region": _string,
    "account_id": _account,
    "role_arn": _role_arn,
    "endpoint_url": _url,
    "prometheusUrl": _url,
    "defaults": _defaults,
    "createConfigRepo": _bool,
    "infra": _object,
    **_release_rules(),
}


def check_value(kind: str, key: str, value: Any) -> None:
    table = APPLICATION_KEYS if kind == "application" else ENVIRONMENT_KEYS
    check = table.get(key)
    if check is not None:
        check(key, value)


def check_record(kind: str, metadata: Mapping[str, Any]) -> None:
    """Whole-record rules, checked after every change."""
    for key, value in metadata.items():
        check_key(key)
        check_value(kind, key, value)
    if kind == "environment":
        if "provider" not in metadata:
            raise InvalidInput("an environment needs a provider (local or aws)", field="provider")
        if metadata["provider"] == "aws" and "region" not in metadata:
            raise InvalidInput("an aws environment needs a region", field="region")
