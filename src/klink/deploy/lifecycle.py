"""The one state machine of a deployment: every status change in Klink goes through ``move``.

Statuses and the events that change them are one table (``TRANSITIONS``): a row is (status
now, event, phase it applies to, status after). An event that has no row for the status is
refused with ``Conflict`` naming what is allowed, so no code path can invent a transition.

Human controls (pause, resume, cancel, retry, undo, unlock) are events too. A control that
arrives while an engine holds the deployment's lease (it is running an action right now) is not
applied by the API: it is recorded (``d.control``) and the holder applies it through this same
table at the action boundary (``apply_requested``). The engine writes back only a status it set
itself: ``DeploymentStore.persist`` refuses to write when the stored status is not the one the
engine read, and the engine stops.

The global lock (``klink lock``) refuses new work — deploy, redeploy, rollback, resize, retry,
resume — and always allows pause, cancel and undo (and an admin's unlock, which starts nothing),
so that during a freeze people can still stop or reverse what runs (``LOCK_ALLOWS``). A
deployment already running when the lock is set goes on unless someone pauses or cancels it.
"""

from __future__ import annotations

from dataclasses import dataclass

from klink.deploy.model import (
    ACTIVE,
    CANCELLED,
    COMPLETED,
    DEPLOY,
    FAILED,
    INVALID,
    PAUSED,
    PREPARE,
    PREPARING,
    RUNNING,
    Deployment,
)
from klink.errors import Conflict

ANY = "*"


@dataclass(frozen=True)
class Transition:
    status: str
    event: str
    phase: str  # PREPARE, DEPLOY or ANY
    to: str


TRANSITIONS: tuple[Transition, ...] = (
    # The engine's own events.
    Transition(PREPARING, "prepared", PREPARE, RUNNING),
    Transition(PREPARING, "fail", ANY, INVALID),  # nothing touched: slot released
    Transition(RUNNING, "fail", ANY, FAILED),  # the cloud may have changed: slot kept
    Transition(RUNNING, "complete", ANY, COMPLETED),
    Transition(PREPARING, "pause_point", ANY, PAUSED),
    Transition(RUNNING, "pause_point", ANY, PAUSED),
    # People's controls.
    Transition(PREPARING, "pause", ANY, PAUSED),
    Transition(RUNNING, "pause", ANY, PAUSED),
    Transition(PAUSED, "resume", PREPARE, PREPARING),
    Transition(PAUSED, "resume", DEPLOY, RUNNING),
    Transition(PREPARING, "cancel", ANY, CANCELLED),
    Transition(PAUSED, "cancel", PREPARE, CANCELLED),
    Transition(RUNNING, "cancel", ANY, FAILED),
    Transition(PAUSED, "cancel", DEPLOY, FAILED),
    Transition(FAILED, "retry", PREPARE, PREPARING),
    Transition(FAILED, "retry", DEPLOY, RUNNING),
    Transition(FAILED, "undo", DEPLOY, RUNNING),
    Transition(PAUSED, "undo", DEPLOY, RUNNING),
    Transition(RUNNING, "undo", DEPLOY, RUNNING),
    Transition(COMPLETED, "undo", DEPLOY, RUNNING),  # undo of the last completed deployment
    Transition(PAUSED, "unlock", ANY, CANCELLED),
    Transition(FAILED, "unlock", ANY, CANCELLED),
    # The release rules (``await_approval``), all before any cloud change: a rejection or an
    # expired approval ends the deployment cancelled, with the reason, and frees the slot.
    Transition(PREPARING, "reject", PREPARE, CANCELLED),
    Transition(PAUSED, "reject", PREPARE, CANCELLED),
    Transition(PREPARING, "expire", PREPARE, CANCELLED),
)

CONTROLS = ("pause", "resume", "cancel", "retry", "undo", "unlock", "reject")
LOCK_ALLOWS = frozenset({"pause", "cancel", "undo", "unlock", "reject"})
# Controls the holder of a lease applies at the action boundary (the others need the
# deployment to be at rest, where no engine holds it).
DEFERRABLE = frozenset({"pause", "cancel", "undo", "reject"})

_TABLE: dict[tuple[str, str, str], str] = {(t.status, t.event, t.phase): t.to for t in TRANSITIONS}


def target(status: str, event: str, phase: str) -> str | None:
    """The status ``event`` leads to from ``status`` in ``phase``; None when not allowed."""
    return _TABLE.get((status, event, phase)) or _TABLE.get((status, event, ANY))


def allowed(status: str, phase: str) -> list[str]:
    return sorted({t.event for t in TRANSITIONS if target(status, t.event, phase) is not None})


def move(d: Deployment, event: str, *, hold: str | None = None) -> str:
    """Apply ``event`` to ``d``; Conflict when the table has no row. ``hold`` says why a
    deployment that becomes paused is held ("paused by ops: checking dashboards"); leaving
    ``paused`` forgets it."""
    to = target(d.status, event, d.phase)
    if to is None:
        can = [c for c in allowed(d.status, d.phase) if c in CONTROLS]
        hint = f"; it can be: {', '.join(can)}" if can else ""
        raise Conflict(f"deployment {d.id} is {d.status}: cannot {event} it{hint}", field="status")
    d.status = to
    d.hold = (hold or d.hold) if to == PAUSED else None
    return to


@dataclass(frozen=True)
class Request:
    """A control recorded while an engine held the lease: ``name`` by ``who``."""

    name: str
    who: str

    def encode(self) -> str:
        return f"{self.name}:{self.who}"

    @classmethod
    def decode(cls, raw: str) -> Request:
        name, _, who = raw.partition(":")
        return cls(name, who or "a user")


def is_active(d: Deployment) -> bool:
    return d.status in ACTIVE


def unlock_refusal(d: Deployment) -> Conflict | None:
    """Unlock frees a slot only when no engine may be working on the deployment."""
    if d.status in ACTIVE:
        return Conflict(
            f"deployment {d.id} is {d.status}: pause or cancel it first, then unlock",
            field="status",
        )
    return None
