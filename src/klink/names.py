"""Names: the one place that knows how Klink names things.

Apps and environments match ``^[a-z][a-z0-9]{0,31}$``: no hyphen, because hyphens separate the
parts of generated names. Groups are named Asgard-style ``{app}-{env}-v{NNN}`` (v000..v999, then
wrapping, skipping names still taken); "the current group" of app+env is the newest group whose
name matches that pattern *exactly*, so asking for ``pro`` never finds ``prod``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from klink.errors import InvalidInput

NAME_RULE = "^[a-z][a-z0-9]{0,31}$"
_NAME_RE = re.compile(NAME_RULE)
_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+~-]{0,63}$")
GROUP_SEQUENCES = 1000


def check_name(value: object, field: str = "name") -> str:
    """Return ``value`` if it is a valid app/env name, else raise InvalidInput naming the rule."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise InvalidInput(
            f"{field} {value!r} must match {NAME_RULE} "
            "(lowercase letter, then up to 31 lowercase letters or digits)",
            field=field,
        )
    return value


def is_valid_name(value: object) -> bool:
    return isinstance(value, str) and _NAME_RE.fullmatch(value) is not None


def check_version(value: object, field: str = "version") -> str:
    if not isinstance(value, str) or not _VERSION_RE.fullmatch(value):
        raise InvalidInput(
            f"{field} {value!r} must be 1-64 characters of letters, digits and ._+~- "
            "starting with a letter or digit",
            field=field,
        )
    return value


def group_pattern(app: str, env: str) -> re.Pattern[str]:
    """The exact pattern of app+env's groups: ``^{app}-{env}-v\\d{3}$``."""
    return re.compile(rf"^{re.escape(app)}-{re.escape(env)}-v(\d{{3}})$")


def group_name(app: str, env: str, sequence: int) -> str:
    return f"{app}-{env}-v{sequence % GROUP_SEQUENCES:03d}"


def group_sequence(app: str, env: str, name: str) -> int | None:
    """The NNN of ``name`` if it is one of app+env's groups, else None."""
    match = group_pattern(app, env).fullmatch(name)
    return int(match.group(1)) if match else None


def next_group_name(app: str, env: str, newest: str | None, taken: Iterable[str]) -> str:
    """The group name after ``newest`` (the current group, or None), skipping names taken.

    Sequences wrap from 999 to 000. If all 1000 names are taken, that is a conflict the
    operator must clean up.
    """
    taken_set = set(taken)
    start = 0
    if newest is not None:
        seq = group_sequence(app, env, newest)
        start = 0 if seq is None else seq + 1
    for offset in range(GROUP_SEQUENCES):
        candidate = group_name(app, env, start + offset)
        if candidate not in taken_set:
            return candidate
    from klink.errors import Conflict

    raise Conflict(f"all {GROUP_SEQUENCES} group names of {app}-{env} are taken")


def launch_template_name(group: str, at: datetime) -> str:
    return f"{group}-{at:%Y%m%d%H%M%S}"


def image_name(app: str, version: str, at: datetime) -> str:
    return f"{app}-{version}-{at:%Y%m%d%H%M%S}"


def config_repo_name(app: str, env: str) -> str:
    return f"{app}-{env}"


# Branch names and hashes, optionally followed by ~N / ^N steps: HEAD, HEAD~3, main^, 1a2b3c4.
_BASE = r"(?:HEAD|[0-9a-f]{4,40}|[A-Za-z0-9_][A-Za-z0-9_./-]{0,199})"
_REF_RE = re.compile(rf"^{_BASE}(?:~[0-9]{{0,6}}|\^[0-9]?)*$")


def check_ref(ref: str, field: str = "at") -> str:
    """Accept a hash (4-40 hex), ``HEAD``, a branch name, each with ``~N``/``^N`` steps.

    Refuse everything else with InvalidInput before git sees it: ``..`` and ``/.`` (paths and
    ranges), a leading ``-`` (options), spaces, NUL and other control characters, ``@{``,
    ``:`` (``REF:path``), ``.lock`` suffixes.
    """
    if (
        not ref
        or not _REF_RE.fullmatch(ref)
        or ".." in ref
        or "/." in ref
        or "//" in ref
        or ref.endswith(("/", ".", ".lock"))
    ):
        raise InvalidInput(
            f"{field} {ref!r} is not a commit reference (a hash, HEAD, HEAD~N or a branch name)",
            field=field,
        )
    return ref
