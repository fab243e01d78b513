"""``klink audit``: the audit log (admin), newest first, one page at a time.

Filters are the API's (``GET /auth/audit``): ``--actor``, ``--action``, ``--target`` (that path
or below it) and ``--since`` (ISO 8601, UTC when no zone is given, or an age such as ``30m``,
``12h``, ``7d``). A page ends with the command line of the next one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from klink.cli.api import CliError, client_for
from klink.cli.output import emit_json, say, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from klink.cli.parse import Args

_AGE = re.compile(r"^(\d{1,6})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def since_param(value: str, now: datetime) -> str:
    """The API's ``since`` for what a person typed."""
    age = _AGE.fullmatch(value.strip())
    if age:
        delta = timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})
        return (now - delta).isoformat()
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CliError(
            f"--since {value!r}: expected an ISO 8601 time or an age (30m, 12h, 7d)", code=2
        ) from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def _audit(args: Args) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    for key in ("actor", "action", "target", "before"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    if args.since is not None:
        params["since"] = since_param(args.since, datetime.now(UTC))
    page = client_for(args).call("GET", "/auth/audit", params=params)
    if args.json:
        emit_json(page)
        return 0
    table(
        ["at", "actor", "on behalf of", "action", "target", "outcome"],
        [
            [e["at"], e["actor"], e["on_behalf_of"], e["action"], e["target"], e["outcome"]]
            for e in page["entries"]
        ],
    )
    if page["next"] is not None:
        say(f"more: klink audit --before {page['next']} (with the same filters)")
    return 0
