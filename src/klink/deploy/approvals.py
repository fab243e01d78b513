"""People's decisions on a deployment's release rules: approve, reject, override.

Each is a row of ``deploy_approvals`` (who, with which role, when, why), written in the same
transaction as the deployment's log line and its wake-up (``DeploymentStore.control``), so the
history and the count never disagree. ``await_approval`` and ``await_window`` read them through
``Services.decisions``; the read API shows them with the deployment.

A person is a token's name, or a token's name and the chat user it acts for
(``ci-bot via slack:U123``): distinct people are distinct such names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from klink import store
from klink.deploy.tables import deploy_approvals

APPROVE, REJECT, OVERRIDE = "approve", "reject", "override"


@dataclass(frozen=True)
class Decision:
    decision: str
    actor: str
    role: str
    message: str
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "actor": self.actor,
            "role": self.role,
            "message": self.message,
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Decision:
        return cls(
            decision=str(data["decision"]),
            actor=str(data["actor"]),
            role=str(data["role"]),
            message=str(data["message"]),
            at=datetime.fromisoformat(str(data["at"])),
        )


def approvers(decisions: Iterable[Decision]) -> list[str]:
    """The distinct people who approved, in order."""
    return list(dict.fromkeys(d.actor for d in decisions if d.decision == APPROVE))


def record(conn: Connection, deployment_id: str, decision: Decision) -> None:
    conn.execute(
        deploy_approvals.insert().values(
            deployment_id=deployment_id,
            decision=decision.decision,
            actor=decision.actor,
            role=decision.role,
            message=decision.message,
            at=decision.at,
        )
    )


def _select(ids: list[str]) -> Any:
    return (
        sa.select(deploy_approvals)
        .where(deploy_approvals.c.deployment_id.in_(ids))
        .order_by(deploy_approvals.c.id)
    )


def _decision(row: Any) -> Decision:
    return Decision(row.decision, row.actor, row.role, row.message, row.at)


class Decisions:
    """The decisions of deployments, read from the deploy service's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, deployment_id: str) -> list[Decision]:
        return self.of([deployment_id]).get(deployment_id, [])

    def of(self, ids: Iterable[str], conn: Connection | None = None) -> dict[str, list[Decision]]:
        wanted = list(dict.fromkeys(ids))
        found: dict[str, list[Decision]] = {}
        if not wanted:
            return found
        if conn is not None:
            rows = conn.execute(_select(wanted)).all()
        else:
            with store.read(self.engine) as c:
                rows = c.execute(_select(wanted)).all()
        for row in rows:
            found.setdefault(row.deployment_id, []).append(_decision(row))
        return found
