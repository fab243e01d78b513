"""The deployment's data: statuses, plan steps, action outcomes and group states.

A plan is a tuple of ``Step`` (frozen): a named action, its phase and a few literal arguments.
An action returns ``Done``, ``RetryAfter(seconds)`` (a waiting action, rescheduled by the
engine) or ``Failed(message)``. A ``GroupState`` is everything needed to recreate or retire a
group (its launch template, capacity, target groups, processes, policies, alarms, scheduled
actions); previous and new states are stored as its JSON.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from klink.deploy.preparation import HealthGate

PREPARING = "preparing"
RUNNING = "running"
PAUSED = "paused"
FAILED = "failed"
INVALID = "invalid"
COMPLETED = "completed"
CANCELLED = "cancelled"
STATUSES = (PREPARING, RUNNING, PAUSED, FAILED, INVALID, COMPLETED, CANCELLED)
ACTIVE = (PREPARING, RUNNING)  # the engine works on these
FINAL = (INVALID, COMPLETED, CANCELLED)  # the app+env slot is free again

PREPARE = "prepare"
DEPLOY = "deploy"

KINDS = ("deploy", "rollback", "redeploy", "resize")


@dataclass(frozen=True)
class Step:
    """One action of a plan: ``name`` keys the action registry; ``args`` are literals."""

    name: str
    phase: str
    args: tuple[tuple[str, Any], ...] = ()

    def arg(self, key: str, default: Any = None) -> Any:
        for k, v in self.args:
            if k == key:
                return v
        return default

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "phase": self.phase, "args": dict(self.args)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        args = tuple(sorted(dict(data.get("args") or {}).items()))
        return cls(name=str(data["name"]), phase=str(data["phase"]), args=args)


def step(name: str, phase: str, **args: Any) -> Step:
    return Step(name, phase, tuple(sorted(args.items())))


def plan_hash(steps: Sequence[Step]) -> str:
    """A short hash of a plan's steps and their arguments: two plans with one hash are the same."""
    text = json.dumps([s.to_json() for s in steps], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Done:
    message: str | None = None
    pause: str | None = None  # a reason: the engine pauses after this action


@dataclass(frozen=True)
class RetryAfter:
    seconds: float
    reason: str = ""


@dataclass(frozen=True)
class Failed:
    message: str


Outcome = Done | RetryAfter | Failed


@dataclass(frozen=True)
class LaunchState:
    name: str
    image_id: str
    instance_type: str
    user_data: str
    security_group_ids: tuple[str, ...] = ()
    instance_profile: str | None = None
    key_name: str | None = None
    block_devices: tuple[dict[str, Any], ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupState:
    """A group as it was (previous) or is meant to be (new), enough to recreate it."""

    name: str
    launch: LaunchState | None
    min_size: int
    max_size: int
    desired_capacity: int
    image_id: str | None = None
    version: str | None = None
    config_commit: str | None = None
    subnets: tuple[str, ...] = ()
    default_cooldown: int = 10
    health_check_type: str = "EC2"
    health_check_grace_period: int = 600
    termination_policies: tuple[str, ...] = ()
    target_groups: tuple[str, ...] = ()
    suspended_processes: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    policies: tuple[dict[str, Any], ...] = ()
    alarms: tuple[dict[str, Any], ...] = ()
    scheduled_actions: tuple[dict[str, Any], ...] = ()
    health: HealthGate = field(default_factory=HealthGate)  # how this group is checked healthy
    # True: a member of its target groups by weight (``attach_traffic``); False: its instances
    # are registered with them directly (groups deployed before weights, and their records).
    weighted: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tags"] = dict(self.tags)
        if self.launch is not None:
            data["launch"]["tags"] = dict(self.launch.tags)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> GroupState | None:
        if not data:
            return None
        raw = dict(data)
        launch = raw.pop("launch", None)
        launch_state = None
        if launch:
            launch = dict(launch)
            launch_state = LaunchState(
                **{
                    **launch,
                    "security_group_ids": tuple(launch.get("security_group_ids") or ()),
                    "block_devices": tuple(launch.get("block_devices") or ()),
                    "tags": dict(launch.get("tags") or {}),
                }
            )
        for key in (
            "subnets",
            "termination_policies",
            "target_groups",
            "suspended_processes",
            "policies",
            "alarms",
            "scheduled_actions",
        ):
            raw[key] = tuple(raw.get(key) or ())
        raw["tags"] = dict(raw.get("tags") or {})
        raw["health"] = HealthGate.from_json(raw.get("health"))
        return cls(launch=launch_state, **raw)


@dataclass
class Deployment:
    """The deployment record as the engine and the API see it."""

    id: str
    app: str
    env: str
    image: str | None
    commit: str | None
    user: str
    message: str
    kind: str = "deploy"
    status: str = PREPARING
    phase: str = PREPARE
    undo: bool = False
    config_commit: str | None = None
    previous_state: dict[str, Any] | None = None
    new_state: dict[str, Any] | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    plan: list[Step] = field(default_factory=list)
    cursor: int = 0
    error: str | None = None
    control: str | None = None
    via: str | None = None  # the front door a person acted through (``slack:U123``)
    hold: str | None = None  # why it is paused and by whom (set by ``lifecycle.move``)
    created_at: Any = None
    updated_at: Any = None
    finished_at: Any = None
    # Read side only (``waiting.annotate``), never persisted: the task at the cursor (status,
    # message) and the people's decisions on the release rules, for ``waitingFor``.
    current_task: Mapping[str, Any] | None = None
    decisions: tuple[Mapping[str, Any], ...] = ()

    @property
    def previous(self) -> GroupState | None:
        return GroupState.from_json(self.previous_state)

    @property
    def new(self) -> GroupState | None:
        return GroupState.from_json(self.new_state)

    def summary(self) -> dict[str, Any]:
        from klink.deploy.waiting import waiting_for  # it reads this module's statuses

        return {
            "id": self.id,
            "app": self.app,
            "env": self.env,
            "image": self.image,
            "commit": self.config_commit or self.commit,
            "requestedCommit": self.commit,
            "user": self.user,
            "via": self.via,
            "actor": f"{self.user} via {self.via}" if self.via else self.user,
            "message": self.message,
            "kind": self.kind,
            "status": self.status,
            "phase": self.phase,
            "undo": self.undo,
            "cursor": self.cursor,
            "actions": len(self.plan),
            "current": self.plan[self.cursor].name if self.cursor < len(self.plan) else None,
            "error": self.error,
            "waitingFor": waiting_for(self),
            "promotedFrom": self.facts.get("promoted_from"),
            "createdAt": _iso(self.created_at),
            "updatedAt": _iso(self.updated_at),
            "finishedAt": _iso(self.finished_at),
        }

    def to_json(self) -> dict[str, Any]:
        from klink.deploy.canary_report import canary_of

        return {
            **self.summary(),
            "planHash": plan_hash(self.plan),
            "canary": canary_of(self, values=False),
            "approvals": [dict(d) for d in self.decisions],
            "previousState": self.previous_state,
            "newState": self.new_state,
            "plan": [s.to_json() for s in self.plan],
        }


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())
