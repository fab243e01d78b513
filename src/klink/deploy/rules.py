"""An environment's release rules: approvals, deployment windows, freezes, ``promotesFrom``.

The one parser of these metadata keys: the metadata service calls it when a key is set (a bad
value is refused with 400 naming the key and the reason, ``metadata/keys.py``), and the deploy
service calls it again when it reads the environment, so both agree on what a value means.

- ``approvals: {required, roles, notTheRequester, expiresAfter}``: ``required`` distinct people
  (distinct token names, and chat users through one token) with one of ``roles`` (default
  ``["deployer"]``: a deployer on this environment, or an admin) approve before anything changes
  in the cloud. ``notTheRequester`` (default true) refuses the requester's own approval.
  ``expiresAfter`` (``"30m"``, ``"4h"``, ``"2d"``; default: never) ends an unapproved
  deployment ``cancelled`` that long after it started waiting.
- ``windows: [{days, from, to, timezone}]``: deployments go only inside one of the windows.
  ``days`` are ``Mon``..``Sun`` or ranges (``Mon-Fri``); ``from``/``to`` are ``HH:MM`` wall-clock
  times in ``timezone`` (an IANA name, read with zoneinfo, so summer time is the zone's own); a
  window whose ``to`` is before its ``from`` ends on the next day.
- ``freezes: [{from, to, reason}]``: ISO 8601 instants with a zone (``2026-12-20T00:00:00Z``);
  nothing deploys from ``from`` (included) to ``to`` (excluded).

``opening(now)`` says when a deployment requested at ``now`` may go: ``now`` itself, or the
first instant outside every freeze and inside a window. Pure functions of the values and the
time: the clock is the caller's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from klink.auth.tokens import ROLES
from klink.errors import InvalidInput
from klink.names import is_valid_name

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_REQUIRED = 10
_DURATION = re.compile(r"^(\d{1,4})([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Approvals:
    required: int = 1
    roles: tuple[str, ...] = ("deployer",)
    not_the_requester: bool = True
    expires_after: float | None = None  # seconds; None: never

    def who(self, env: str) -> str:
        """``deployer on prod``, ``deployer or admin on prod``: who may approve."""
        return f"{' or '.join(self.roles)} on {env}"


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time
    zone: ZoneInfo

    def spans(self, around: datetime) -> list[tuple[datetime, datetime]]:
        """This window's occurrences (UTC start, UTC end) from the day before ``around`` to a
        week after it."""
        local = around.astimezone(self.zone).date()
        found = []
        for offset in range(-1, 9):
            day = local + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            end_day = day + timedelta(days=1) if self.end <= self.start else day
            found.append((_at(day, self.start, self.zone), _at(end_day, self.end, self.zone)))
        return found


@dataclass(frozen=True)
class Freeze:
    start: datetime
    end: datetime
    reason: str


@dataclass(frozen=True)
class Opening:
    """When a deployment may go, and why it may not go at once (empty when it may)."""

    at: datetime
    reason: str = ""

    @property
    def now(self) -> bool:
        return not self.reason


@dataclass(frozen=True)
class Rules:
    approvals: Approvals | None = None
    windows: tuple[Window, ...] = ()
    freezes: tuple[Freeze, ...] = ()
    promotes_from: str | None = None

    def opening(self, now: datetime) -> Opening:
        """The first instant at or after ``now`` outside every freeze and inside a window."""
        at, frozen = now.astimezone(UTC), None
        for _ in range(64):  # windows and freezes that keep pushing each other are refused
            freeze = next((f for f in self.freezes if f.start <= at < f.end), None)
            if freeze is not None:
                frozen = frozen or freeze
                at = freeze.end
                continue
            if self.windows and not _inside(self.windows, at):
                at = _next_start(self.windows, at)
                continue
            break
        if at == now.astimezone(UTC):
            return Opening(at)
        when = describe_time(at, now, self._zone())
        if frozen is not None:
            return Opening(at, f"frozen: {frozen.reason}; opens {when}")
        return Opening(at, f"window opens {when}")

    def _zone(self) -> ZoneInfo | None:
        return self.windows[0].zone if self.windows else None


def describe_time(at: datetime, now: datetime, zone: ZoneInfo | None) -> str:
    """``Mon 09:00 Europe/London`` less than six days from ``now`` (a weekday names one day
    then); with the date beyond."""
    local = at.astimezone(zone or UTC)
    name = zone.key if zone is not None else "UTC"
    if at - now < timedelta(days=6):
        return f"{local:%a %H:%M} {name}"
    return f"{local:%a %Y-%m-%d %H:%M} {name}"


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def _inside(windows: Sequence[Window], at: datetime) -> bool:
    return any(start <= at < end for w in windows for start, end in w.spans(at))


def _next_start(windows: Sequence[Window], at: datetime) -> datetime:
    starts = [start for w in windows for start, _ in w.spans(at) if start > at]
    return min(starts)  # every window has a day, so one starts within a week


# Parsing ---------------------------------------------------------------------------------
def of(metadata: Mapping[str, Any] | None) -> Rules:
    """The rules in an environment's metadata (none when it sets none)."""
    meta = metadata or {}
    return Rules(
        approvals=approvals(meta["approvals"]) if meta.get("approvals") is not None else None,
        windows=windows(meta["windows"]) if meta.get("windows") is not None else (),
        freezes=freezes(meta["freezes"]) if meta.get("freezes") is not None else (),
        promotes_from=promotes_from(meta["promotesFrom"]) if meta.get("promotesFrom") else None,
    )


def _bad(message: str, key: str) -> InvalidInput:
    return InvalidInput(message, field=key)


def duration(value: Any, where: str, key: str) -> float:
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) == 0:
        raise _bad(f'{where} must be a duration like "30m", "4h" or "2d"', key)
    return float(int(match.group(1)) * _UNIT[match.group(2)])


def approvals(value: Any, key: str = "approvals") -> Approvals:
    if not isinstance(value, dict):
        raise _bad(
            f"{key} must be an object {{required, roles, notTheRequester, expiresAfter}}", key
        )
    unknown = sorted(set(value) - {"required", "roles", "notTheRequester", "expiresAfter"})
    if unknown:
        raise _bad(f"{key}.{unknown[0]} is not a known setting", key)
    required = value.get("required", 1)
    if isinstance(required, bool) or not isinstance(required, int):
        raise _bad(f"{key}.required must be a whole number of approvals", key)
    if not 1 <= required <= MAX_REQUIRED:
        raise _bad(f"{key}.required must be between 1 and {MAX_REQUIRED}", key)
    roles = value.get("roles", ["deployer"])
    if (
        not isinstance(roles, list)
        or not roles
        or not all(isinstance(r, str) and r in ROLES for r in roles)
    ):
        raise _bad(f"{key}.roles must be a non-empty list among {', '.join(ROLES)}", key)
    not_requester = value.get("notTheRequester", True)
    if not isinstance(not_requester, bool):
        raise _bad(f"{key}.notTheRequester must be true or false", key)
    expires = value.get("expiresAfter")
    return Approvals(
        required=required,
        roles=tuple(dict.fromkeys(roles)),
        not_the_requester=not_requester,
        expires_after=None if expires is None else duration(expires, f"{key}.expiresAfter", key),
    )


def _days(value: Any, where: str, key: str) -> frozenset[int]:
    if not isinstance(value, list) or not value:
        raise _bad(f"{where} must be a non-empty list of days (Mon..Sun, or Mon-Fri)", key)
    found: set[int] = set()
    for item in value:
        parts = item.lower().split("-") if isinstance(item, str) else []
        if not 1 <= len(parts) <= 2 or not all(p in DAYS for p in parts):
            raise _bad(f"{where}: {item!r} is not a day (Mon..Sun) or a range (Mon-Fri)", key)
        first, last = DAYS.index(parts[0]), DAYS.index(parts[-1])
        found.update(d % 7 for d in range(first, last + 1 if last >= first else last + 8))
    return frozenset(found)


def _clock(value: Any, where: str, key: str) -> time:
    match = _HHMM.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _bad(f"{where} must be a 24-hour time HH:MM, e.g. 09:00", key)
    return time(int(match.group(1)), int(match.group(2)))


def zone(value: Any, where: str, key: str) -> ZoneInfo:
    if not isinstance(value, str) or not value or ".." in value or value.startswith("/"):
        raise _bad(f"{where} must be an IANA time zone name, e.g. Europe/London", key)
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _bad(
            f"{where} {value!r} is not an IANA time zone (e.g. Europe/London)", key
        ) from None


def windows(value: Any, key: str = "windows") -> tuple[Window, ...]:
    if not isinstance(value, list) or not value:
        raise _bad(
            f"{key} must be a non-empty list of {{days, from, to, timezone}} "
            "(delete the key to deploy at any time)",
            key,
        )
    found = []
    for index, item in enumerate(value):
        where = f"{key}[{index}]"
        if not isinstance(item, dict):
            raise _bad(f"{where} must be an object {{days, from, to, timezone}}", key)
        unknown = sorted(set(item) - {"days", "from", "to", "timezone"})
        if unknown:
            raise _bad(f"{where}.{unknown[0]} is not a known setting", key)
        start = _clock(item.get("from"), f"{where}.from", key)
        end = _clock(item.get("to"), f"{where}.to", key)
        if start == end:
            raise _bad(f"{where}: from and to are the same time (an empty window)", key)
        found.append(
            Window(
                days=_days(item.get("days"), f"{where}.days", key),
                start=start,
                end=end,
                zone=zone(item.get("timezone"), f"{where}.timezone", key),
            )
        )
    return tuple(found)


def instant(value: Any, where: str, key: str) -> datetime:
    parsed = None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise _bad(f"{where} must be an ISO 8601 time with a zone, e.g. 2026-12-20T00:00:00Z", key)
    return parsed.astimezone(UTC)


def freezes(value: Any, key: str = "freezes") -> tuple[Freeze, ...]:
    if not isinstance(value, list):
        raise _bad(f"{key} must be a list of {{from, to, reason}}", key)
    found = []
    for index, item in enumerate(value):
        where = f"{key}[{index}]"
        if not isinstance(item, dict):
            raise _bad(f"{where} must be an object {{from, to, reason}}", key)
        unknown = sorted(set(item) - {"from", "to", "reason"})
        if unknown:
            raise _bad(f"{where}.{unknown[0]} is not a known setting", key)
        start = instant(item.get("from"), f"{where}.from", key)
        end = instant(item.get("to"), f"{where}.to", key)
        if end <= start:
            raise _bad(f"{where}.to must be after {where}.from", key)
        reason = item.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise _bad(f"{where}.reason must say why (a non-empty string)", key)
        found.append(Freeze(start, end, reason.strip()))
    return tuple(found)


def promotes_from(value: Any, key: str = "promotesFrom") -> str:
    if not is_valid_name(value):
        raise _bad(f"{key} must be the name of an environment, e.g. staging", key)
    return str(value)
