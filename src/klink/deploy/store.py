"""Deployment storage: records, tasks, logs, the app+env slot, the global lock and leases.

Everything the engine writes after an action happens in one transaction (``persist``), guarded
by the lease: a holder that lost its lease writes nothing. Claiming is an ``UPDATE … WHERE
lease_expires < now`` whose row count says who won, so exactly one engine gets a deployment
whatever the database; on PostgreSQL the candidate row is taken ``FOR UPDATE SKIP LOCKED``, so
claimers never queue behind each other or behind a row locked by a worker cut off mid-write.
One deployment per app+env is the ``deploy_slots`` primary key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from klink import store
from klink.deploy.history import History, to_deployment
from klink.deploy.lifecycle import LOCK_ALLOWS
from klink.deploy.model import ACTIVE, FINAL, Deployment
from klink.deploy.tables import deploy_lock, deploy_logs, deploy_slots, deploy_tasks, deployments
from klink.deploy.wakeup import announce
from klink.errors import Conflict, Locked, NotFound

GLOBAL = "global"

# Statements the engine runs after every action, built once with bind parameters so that
# SQLAlchemy compiles them once (building ``.values(**literal)`` per call costs milliseconds).
_STATE_COLUMNS = (
    "image",
    "commit",
    "config_commit",
    "status",
    "phase",
    "undo",
    "previous_state",
    "new_state",
    "facts",
    "plan",
    "cursor",
    "error",
    "control",
    "via",
    "hold",
    "finished_at",
)
# FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers) so that a human
# control and the engine's write after an action never interleave.
_CONTROL_OF_HOLDER = (
    sa.select(deployments.c.control, deployments.c.status)
    .where(
        deployments.c.id == sa.bindparam("_id"),
        deployments.c.lease_holder == sa.bindparam("_holder"),
    )
    .with_for_update()
)
_PERSIST = (
    deployments.update()
    .where(deployments.c.id == sa.bindparam("_id"))
    .values(
        {
            **{name: sa.bindparam(name) for name in _STATE_COLUMNS},
            "updated_at": sa.bindparam("updated_at"),
            "not_before": sa.bindparam("not_before"),
            "lease_holder": sa.bindparam("lease_holder"),
            "lease_expires": sa.bindparam("lease_expires"),
        }
    )
)
_TASK_COLUMNS = (
    "action",
    "phase",
    "attempts",
    "status",
    "started_at",
    "ended_at",
    "message",
    "errors",
)
_TASK_UPDATE = (
    deploy_tasks.update()
    .where(
        deploy_tasks.c.deployment_id == sa.bindparam("_id"),
        deploy_tasks.c.seq == sa.bindparam("_seq"),
    )
    .values({name: sa.bindparam(name) for name in _TASK_COLUMNS})
)
_TASK_INSERT = deploy_tasks.insert()
_LOG_INSERT = deploy_logs.insert()


@dataclass(frozen=True)
class TaskSoFar:
    attempts: int
    started_at: datetime | None
    message: str | None
    errors: int = 0  # consecutive transient errors so far (the error budget's count)


@dataclass(frozen=True)
class Claimed:
    id: str
    latency: float  # seconds from when it was due (not_before) to this claim
    takeover: bool  # its previous lease was another holder's and had expired


@dataclass
class TaskUpdate:
    seq: int
    action: str
    phase: str
    attempts: int
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    message: str | None
    exists: bool = False  # a row for this task was written before (resumed, retried)
    errors: int = 0


def _values(d: Deployment) -> dict[str, Any]:
    return {
        "image": d.image,
        "commit": d.commit,
        "config_commit": d.config_commit,
        "status": d.status,
        "phase": d.phase,
        "undo": d.undo,
        "previous_state": d.previous_state,
        "new_state": d.new_state,
        "facts": d.facts,
        "plan": [s.to_json() for s in d.plan],
        "cursor": d.cursor,
        "error": d.error,
        "control": d.control,
        "via": d.via,
        "hold": d.hold,
        "finished_at": d.finished_at,
    }


class DeploymentStore(History):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # Creation, lock and slots ----------------------------------------------------------
    def check_unlocked(self, conn: Connection) -> None:
        row = conn.execute(sa.select(deploy_lock).where(deploy_lock.c.name == GLOBAL)).first()
        if row is not None:
            raise Locked(f"Klink is locked by {row.actor}: {row.message}")

    def create(self, d: Deployment, now: datetime) -> None:
        """Insert ``d`` and take its app+env slot; Conflict when one is in progress."""
        with store.write(self.engine) as conn:
            self.check_unlocked(conn)
            try:
                with conn.begin_nested():
                    conn.execute(
                        deploy_slots.insert().values(
                            app=d.app, env=d.env, deployment_id=d.id, since=now
                        )
                    )
            except sa.exc.IntegrityError:
                holder = conn.execute(
                    sa.select(deploy_slots.c.deployment_id).where(
                        deploy_slots.c.app == d.app, deploy_slots.c.env == d.env
                    )
                ).scalar()
                raise Conflict(
                    f"deployment {holder} of {d.app}/{d.env} is in progress; "
                    "wait for it, undo it, or unlock it",
                    field="app",
                ) from None
            conn.execute(
                deployments.insert().values(
                    id=d.id,
                    app=d.app,
                    env=d.env,
                    kind=d.kind,
                    user=d.user,
                    message=d.message,
                    created_at=now,
                    updated_at=now,
                    not_before=now,
                    **_values(d),
                )
            )
            self._log(conn, d.id, now, [f"{d.kind} requested by {d.user}: {d.message}"])
            announce(conn)

    def set_lock(self, message: str, actor: str, now: datetime) -> None:
        with store.write(self.engine) as conn:
            conn.execute(deploy_lock.delete().where(deploy_lock.c.name == GLOBAL))
            conn.execute(
                deploy_lock.insert().values(name=GLOBAL, message=message, actor=actor, at=now)
            )

    def clear_lock(self) -> bool:
        with store.write(self.engine) as conn:
            return (
                conn.execute(deploy_lock.delete().where(deploy_lock.c.name == GLOBAL)).rowcount > 0
            )

    def lock(self) -> dict[str, Any] | None:
        with store.read(self.engine) as conn:
            row = conn.execute(sa.select(deploy_lock).where(deploy_lock.c.name == GLOBAL)).first()
        if row is None:
            return None
        return {"message": row.message, "actor": row.actor, "at": row.at.isoformat()}

    def release_slot(self, conn: Connection, d: Deployment) -> None:
        conn.execute(
            deploy_slots.delete().where(
                deploy_slots.c.app == d.app,
                deploy_slots.c.env == d.env,
                deploy_slots.c.deployment_id == d.id,
            )
        )

    def slot_holder(self, app: str, env: str) -> str | None:
        with store.read(self.engine) as conn:
            value = conn.execute(
                sa.select(deploy_slots.c.deployment_id).where(
                    deploy_slots.c.app == app, deploy_slots.c.env == env
                )
            ).scalar()
        return None if value is None else str(value)

    def unlock_slot(self, app: str, env: str, deployment_id: str) -> bool:
        """Free app+env's slot if ``deployment_id`` still holds it."""
        with store.write(self.engine) as conn:
            freed = conn.execute(
                deploy_slots.delete().where(
                    deploy_slots.c.app == app,
                    deploy_slots.c.env == env,
                    deploy_slots.c.deployment_id == deployment_id,
                )
            ).rowcount
        return bool(freed)

    # Reading ---------------------------------------------------------------------------
    def get(self, deployment_id: str, conn: Connection | None = None) -> Deployment:
        query = sa.select(deployments).where(deployments.c.id == deployment_id)
        if conn is not None:
            row = conn.execute(query).mappings().first()
        else:
            with store.read(self.engine) as c:
                row = c.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"deployment {deployment_id!r} does not exist", field="id")
        return to_deployment(row)

    def task_attempts(self, deployment_id: str, seq: int) -> TaskSoFar:
        """What task ``seq`` did so far; (0, None, None) when it never ran."""
        with store.read(self.engine) as conn:
            row = conn.execute(
                sa.select(
                    deploy_tasks.c.attempts,
                    deploy_tasks.c.started_at,
                    deploy_tasks.c.message,
                    deploy_tasks.c.errors,
                ).where(deploy_tasks.c.deployment_id == deployment_id, deploy_tasks.c.seq == seq)
            ).first()
        if row is None:
            return TaskSoFar(0, None, None)
        return TaskSoFar(int(row.attempts), row.started_at, row.message, int(row.errors or 0))

    # The engine's side ------------------------------------------------------------------
    def claim(self, holder: str, now: datetime, lease_seconds: float) -> str | None:
        """Take the lease of one due deployment; None when nothing is due."""
        claimed = self.claim_one(holder, now, lease_seconds)
        return None if claimed is None else claimed.id

    def claim_one(self, holder: str, now: datetime, lease_seconds: float) -> Claimed | None:
        """``claim``, saying how late the claim came and whether it took over a dead lease."""
        free = sa.or_(deployments.c.lease_expires.is_(None), deployments.c.lease_expires < now)
        due = sa.or_(deployments.c.not_before.is_(None), deployments.c.not_before <= now)
        query = (
            sa.select(deployments.c.id)
            .where(deployments.c.status.in_(ACTIVE), free, due)
            .order_by(deployments.c.not_before)
            .limit(5)
        )
        # Look first without the write lock: idle engines must not queue writers.
        with store.read(self.engine) as conn:
            candidates = list(conn.execute(query).scalars())
        if not candidates:
            return None
        with store.write(self.engine) as conn:
            row = conn.execute(
                sa.select(deployments.c.id, deployments.c.not_before, deployments.c.lease_holder)
                .where(deployments.c.id.in_(candidates), free, deployments.c.status.in_(ACTIVE))
                .order_by(deployments.c.not_before)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            won = conn.execute(
                deployments.update()
                .where(deployments.c.id == row.id, free, deployments.c.status.in_(ACTIVE))
                .values(
                    lease_holder=holder,
                    lease_expires=now + timedelta(seconds=lease_seconds),
                )
            ).rowcount
            if won != 1:
                return None
        due_at: datetime = row.not_before or now
        return Claimed(
            id=str(row.id),
            latency=max(0.0, (now - due_at).total_seconds()),
            takeover=row.lease_holder is not None and row.lease_holder != holder,
        )

    def renew(self, deployment_id: str, holder: str, now: datetime, lease_seconds: float) -> bool:
        """Extend ``holder``'s lease (a long action must not lose it); False if lost."""
        with store.write(self.engine) as conn:
            return bool(
                conn.execute(
                    deployments.update()
                    .where(deployments.c.id == deployment_id, deployments.c.lease_holder == holder)
                    .values(lease_expires=now + timedelta(seconds=lease_seconds))
                ).rowcount
            )

    def next_claimable(self, now: datetime) -> datetime | None:
        """When the next deployment nobody holds is due (an idle engine sleeps until then)."""
        free = sa.or_(deployments.c.lease_expires.is_(None), deployments.c.lease_expires < now)
        with store.read(self.engine) as conn:
            value = conn.execute(
                sa.select(sa.func.min(deployments.c.not_before)).where(
                    deployments.c.status.in_(ACTIVE), free
                )
            ).scalar()
        if value is None:
            return None
        return store.UtcDateTime().process_result_value(value, conn.dialect)

    def next_due(self) -> datetime | None:
        with store.read(self.engine) as conn:
            value = conn.execute(
                sa.select(sa.func.min(deployments.c.not_before)).where(
                    deployments.c.status.in_(ACTIVE)
                )
            ).scalar()
        if value is None:
            return None
        return store.UtcDateTime().process_result_value(value, conn.dialect)

    def persist(
        self,
        d: Deployment,
        *,
        holder: str,
        expected_status: str,
        now: datetime,
        lease_seconds: float,
        task: TaskUpdate | None,
        logs: Sequence[str],
        not_before: datetime | None,
        release: bool,
        apply_control: Callable[[Deployment, str], list[str]],
    ) -> bool | None:
        """Write ``d`` after an action, in one transaction, if ``holder`` still holds it and
        its stored status is still ``expected_status`` (the one the engine read).

        A control a person requested meanwhile (pause, cancel, undo) is applied to ``d`` by
        ``apply_control`` in the same transaction, which then releases the lease. Returns
        whether the lease is still held, or None when it was lost or the status was changed by
        someone else (nothing of ``d`` written; the engine stops).
        """
        with store.write(self.engine) as conn:
            row = conn.execute(_CONTROL_OF_HOLDER, {"_id": d.id, "_holder": holder}).first()
            if row is None:
                return None
            if row.status != expected_status:
                conn.execute(
                    deployments.update()
                    .where(deployments.c.id == d.id, deployments.c.lease_holder == holder)
                    .values(lease_holder=None, lease_expires=None)
                )
                self._log(
                    conn,
                    d.id,
                    now,
                    [f"engine {holder} stopped: the status became {row.status} meanwhile"],
                )
                return None
            lines = list(logs)
            if row.control:
                lines += apply_control(d, row.control)
                d.control = None
                release = True
            conn.execute(
                _PERSIST,
                {
                    **_values(d),
                    "_id": d.id,
                    "updated_at": now,
                    "not_before": not_before,
                    "lease_holder": None if release else holder,
                    "lease_expires": None if release else now + timedelta(seconds=lease_seconds),
                },
            )
            if task is not None:
                self._task(conn, d.id, task)
            self._log(conn, d.id, now, lines, None if task is None else task.seq)
            if d.status in FINAL:
                self.release_slot(conn, d)
            return not release

    def _task(self, conn: Connection, deployment_id: str, task: TaskUpdate) -> None:
        values = {
            "action": task.action,
            "phase": task.phase,
            "attempts": task.attempts,
            "status": task.status,
            "started_at": task.started_at,
            "ended_at": task.ended_at,
            "message": task.message,
            "errors": task.errors,
        }
        updated = conn.execute(
            deploy_tasks.update()
            .where(deploy_tasks.c.deployment_id == deployment_id, deploy_tasks.c.seq == task.seq)
            .values(**values)
        ).rowcount
        if not updated:
            conn.execute(
                deploy_tasks.insert().values(deployment_id=deployment_id, seq=task.seq, **values)
            )

    def _log(
        self,
        conn: Connection,
        deployment_id: str,
        now: datetime,
        lines: Sequence[str],
        seq: int | None = None,
    ) -> None:
        if lines:
            conn.execute(
                _LOG_INSERT,
                [
                    {"deployment_id": deployment_id, "seq": seq, "at": now, "message": m}
                    for m in lines
                ],
            )

    # Human controls ---------------------------------------------------------------------
    def control(
        self,
        deployment_id: str,
        change: Any,
        now: datetime,
        *,
        name: str,
    ) -> Deployment:
        """Apply control ``name`` as ``change(conn, deployment, leased) -> (lines, due)`` in one
        transaction.

        ``leased`` says whether an engine holds the deployment right now (running an action);
        ``change`` mutates the deployment, which is then written back (lease untouched). The
        global lock refuses every control but those it allows (``lifecycle.LOCK_ALLOWS``).
        """
        with store.write(self.engine) as conn:
            if name not in LOCK_ALLOWS:
                self.check_unlocked(conn)
            row = conn.execute(
                sa.select(deployments.c.lease_expires)
                .where(deployments.c.id == deployment_id)
                .with_for_update()
            ).first()
            d = self.get(deployment_id, conn)
            leased = row is not None and row[0] is not None and row[0] >= now
            lines, due = change(conn, d, leased)
            conn.execute(
                deployments.update()
                .where(deployments.c.id == deployment_id)
                .values(**_values(d), updated_at=now, **({"not_before": now} if due else {}))
            )
            self._log(conn, d.id, now, lines)
            if due:
                announce(conn)
            if d.status in FINAL:
                self.release_slot(conn, d)
            return d

    def reopen(self, deployment_id: str, change: Any, now: datetime) -> Deployment:
        """Take the app+env slot again for a finished deployment and apply ``change`` (an undo
        of the last completed deployment), in one transaction; Conflict if the slot is taken."""
        with store.write(self.engine) as conn:  # an undo: allowed under the global lock
            d = self.get(deployment_id, conn)
            try:
                with conn.begin_nested():
                    conn.execute(
                        deploy_slots.insert().values(
                            app=d.app, env=d.env, deployment_id=d.id, since=now
                        )
                    )
            except sa.exc.IntegrityError:
                raise Conflict(
                    f"{d.app}/{d.env} has a deployment in progress", field="app"
                ) from None
            lines, _due = change(conn, d, False)
            d.finished_at = None
            conn.execute(
                deployments.update()
                .where(deployments.c.id == deployment_id)
                .values(**_values(d), updated_at=now, not_before=now)
            )
            self._log(conn, d.id, now, lines)
            announce(conn)
            return d

    def reset_task(self, conn: Connection, deployment_id: str, seq: int) -> None:
        conn.execute(
            deploy_tasks.update()
            .where(deploy_tasks.c.deployment_id == deployment_id, deploy_tasks.c.seq == seq)
            .values(attempts=0, errors=0, status="pending", started_at=None, ended_at=None)
        )
