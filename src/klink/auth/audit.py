"""The audit log's storage: one row per mutating request, read newest first in pages.

Rows are written by ``klink.service.audit`` (the middleware every service has) and by the git
server for pushes; ``GET /auth/audit`` reads them. An entry is
``{id, at, actor, on_behalf_of, action, target, outcome, detail}``: ``actor`` is the token's
name (null when no valid token came), ``on_behalf_of`` the person a front door acts for (null
until one sets it), ``action`` the method and route (``PUT /metadata/applications/{name}``, or
``git push``), ``target`` the path acted on, ``outcome`` the HTTP status. Bodies are never
recorded, so neither are the secrets in them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from klink import store
from klink.auth.tables import audit

MAX_PAGE = 1000


@dataclass(frozen=True)
class Entry:
    at: datetime
    actor: str | None
    on_behalf_of: str | None
    action: str
    target: str
    outcome: int
    detail: dict[str, Any] | None = None


def record(engine: Engine, entry: Entry) -> None:
    with store.write(engine) as conn:
        conn.execute(
            audit.insert().values(
                at=entry.at,
                actor=_cut(entry.actor, 64),
                on_behalf_of=_cut(entry.on_behalf_of, 128),
                action=_cut(entry.action, 300),
                target=_cut(entry.target, 1000),
                outcome=entry.outcome,
                detail=entry.detail,
            )
        )


def _cut(value: str | None, size: int) -> Any:
    return value[:size] if value is not None else None


@dataclass(frozen=True)
class Query:
    actor: str | None = None
    action: str | None = None
    target: str | None = None  # this path or any below it
    since: datetime | None = None
    before: int | None = None  # the ``next`` of the previous page
    limit: int = 100


def entries(engine: Engine, query: Query) -> tuple[list[dict[str, Any]], int | None]:
    """One page, newest first, and the cursor of the next page (None at the end)."""
    statement = sa.select(audit).order_by(audit.c.id.desc()).limit(query.limit + 1)
    if query.actor is not None:
        statement = statement.where(audit.c.actor == query.actor)
    if query.action is not None:
        statement = statement.where(audit.c.action == query.action)
    if query.target is not None:
        below = query.target.rstrip("/") + "/"
        # LIKE with the prefix's own wildcards escaped: a target is a path, % and _ are data.
        escaped = below.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(
            sa.or_(audit.c.target == query.target, audit.c.target.like(escaped + "%", "\\"))
        )
    if query.since is not None:
        statement = statement.where(audit.c.at >= query.since)
    if query.before is not None:
        statement = statement.where(audit.c.id < query.before)
    with store.read(engine) as conn:
        rows = conn.execute(statement).mappings().all()
    page = [_json(row) for row in rows[: query.limit]]
    more = len(rows) > query.limit
    return page, (page[-1]["id"] if more and page else None)


def _json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "at": row["at"].isoformat(),
        "actor": row["actor"],
        "on_behalf_of": row["on_behalf_of"],
        "action": row["action"],
        "target": row["target"],
        "outcome": row["outcome"],
        "detail": row["detail"],
    }
