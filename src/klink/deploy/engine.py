"""The engine: runs persisted plans, one action at a time, resumable anywhere.

A worker claims a due deployment with a lease (holder id + expiry, renewed at every write), runs
the action at the cursor, and writes the outcome (status, cursor, task row, log lines) in one
transaction guarded by that lease. ``Done`` moves the cursor on; ``RetryAfter`` sets
``not_before`` and lets the lease go, so a waiting deployment occupies no worker; ``Failed``
marks a preparation ``invalid`` (slot released) or a deployment ``failed`` (slot kept until
undo, retry or unlock; ``undoOnFailure`` starts the undo at once). After a crash the action at
the cursor simply runs again: every action is idempotent. Pause and cancel requested while an
action runs take effect when it ends. Clock and sleep are injected.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from klink.deploy import plan as planner
from klink.deploy.actions.notify import notify_failure
from klink.deploy.actions.registry import actions
from klink.deploy.context import Context, Services
from klink.deploy.model import (
    ACTIVE,
    CANCELLED,
    COMPLETED,
    DEPLOY,
    FAILED,
    INVALID,
    PAUSED,
    PREPARE,
    RUNNING,
    Deployment,
    Done,
    Failed,
    Outcome,
    RetryAfter,
)
from klink.deploy.params import read_params
from klink.deploy.store import DeploymentStore, TaskSoFar, TaskUpdate
from klink.errors import KlinkError, Throttled

log = logging.getLogger(__name__)


def start_undo(d: Deployment) -> list[str]:
    """Turn ``d`` into its undo: the deployment phase again with the states swapped."""
    d.undo = True
    restore, remove = d.previous, d.new
    steps = planner.undo_steps(restore, remove)
    d.cursor = len(d.plan)
    d.plan.extend(steps)
    d.status = RUNNING
    d.phase = DEPLOY
    d.error = None
    d.control = None
    what = f"restoring {restore.name}" if restore else "no previous group to restore"
    gone = f", removing {remove.name}" if remove else ""
    return [f"undo: {what}{gone} ({len(steps)} actions)"]


def cancel(d: Deployment, who: str) -> list[str]:
    """Cancel: a preparation is ``cancelled`` (nothing was touched); a deployment ``failed``
    (it may have changed the cloud, so it keeps its slot for undo, retry or unlock)."""
    if d.phase == PREPARE:
        d.status = CANCELLED
        return [f"cancelled by {who}"]
    d.status = FAILED
    d.error = f"cancelled by {who}"
    return [f"cancelled by {who}: undo, retry or unlock"]


class Engine:
    def __init__(
        self,
        db: DeploymentStore,
        services: Services,
        *,
        holder: str | None = None,
        lease_seconds: float = 30.0,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = db
        self.services = services
        self.holder = holder or f"engine-{uuid.uuid4().hex[:12]}"
        self.lease_seconds = lease_seconds
        self.clock = clock or services.clock
        self.sleep = sleep
        self.actions = actions()
        self._current: str | None = None
        self._heartbeat: threading.Thread | None = None
        self._stopped = threading.Event()

    def _beat(self) -> None:
        """Renew the lease of the deployment being worked on every third of the lease, so an
        action slower than the lease (a slow cloud call) is not run twice."""
        while not self._stopped.wait(self.lease_seconds / 3):
            current = self._current
            if current is not None:
                try:
                    self.db.renew(current, self.holder, self.clock(), self.lease_seconds)
                except Exception:
                    log.exception("renewing the lease of %s", current)

    def close(self) -> None:
        self._stopped.set()

    # One deployment ----------------------------------------------------------------------
    def run_once(self) -> bool:
        """Claim one due deployment and work on it until it waits, pauses or ends."""
        deployment_id = self.db.claim(self.holder, self.clock(), self.lease_seconds)
        if deployment_id is None:
            return False
        if self._heartbeat is None:
            self._heartbeat = threading.Thread(
                target=self._beat, name=f"{self.holder}-lease", daemon=True
            )
            self._heartbeat.start()
        self._current = deployment_id
        try:
            self.work(deployment_id)
        finally:
            self._current = None
        return True

    def work(self, deployment_id: str) -> None:
        d = self.db.get(deployment_id)
        # Only the task at the cursor may have run before (waiting, resumed after a crash,
        # retried); every later one starts fresh, so the store is read once per claim.
        known: TaskSoFar | None = self.db.task_attempts(d.id, d.cursor)
        while d.status in ACTIVE and d.cursor < len(d.plan):
            if not self.step(d, known):
                return
            known = None

    def step(self, d: Deployment, known: TaskSoFar | None = None) -> bool:
        """Run the action at the cursor and persist; True while this engine should go on."""
        current = d.plan[d.cursor]
        so_far = known or TaskSoFar(0, None, None)
        attempts, started, exists = so_far.attempts, so_far.started_at, so_far.attempts > 0
        ctx = Context(deployment=d, services=self.services, step=current, attempt=attempts + 1)
        started = started or self.clock()
        outcome = self._run(ctx)
        now = self.clock()
        seq = d.cursor
        release, not_before, lines = False, None, list(ctx.logs)
        if isinstance(outcome, Done):
            status, message = "done", outcome.message
            d.cursor += 1
            if outcome.pause and d.status in ACTIVE:
                d.status = PAUSED
                release = True
            if d.status == COMPLETED or (d.cursor >= len(d.plan) and d.status in ACTIVE):
                d.status, d.finished_at, release = COMPLETED, now, True
        elif isinstance(outcome, RetryAfter):
            status, message = "waiting", outcome.reason
            not_before = now + timedelta(seconds=outcome.seconds)
            release = True
        else:
            status, message, release = "failed", outcome.message, True
            lines += self._fail(ctx, outcome.message, now)
        if message and not (status == "waiting" and message == so_far.message):
            lines.append(f"{current.name}: {message}")  # a wait logs each change, not each look
        task = TaskUpdate(
            seq=seq,
            action=current.name,
            phase=current.phase,
            attempts=attempts + 1,
            status=status,
            started_at=started,
            ended_at=None if status == "waiting" else now,
            message=message,
            exists=exists,
        )
        held = self.db.persist(
            d,
            holder=self.holder,
            now=now,
            lease_seconds=self.lease_seconds,
            task=task,
            logs=lines,
            not_before=not_before or (now if d.status in ACTIVE else None),
            release=release,
            apply_control=self._apply_control,
        )
        return bool(held)

    def _run(self, ctx: Context) -> Outcome:
        fn = self.actions.get(ctx.step.name)
        if fn is None:
            return Failed(f"unknown action {ctx.step.name!r}")
        try:
            return fn(ctx)
        except KlinkError as exc:
            if (type(exc) is KlinkError or isinstance(exc, Throttled)) and ctx.attempt < 30:
                # Unreachable service or throttled cloud: transient, so wait and try again.
                return RetryAfter(min(2.0**ctx.attempt, 30.0), exc.message)
            return Failed(exc.message)
        except Exception as exc:
            log.exception("action %s of deployment %s", ctx.step.name, ctx.deployment.id)
            return Failed(f"{ctx.step.name}: unexpected {type(exc).__name__}: {exc}")

    def _fail(self, ctx: Context, message: str, now: datetime) -> list[str]:
        d = ctx.deployment
        lines = [f"{ctx.step.name} failed: {message}"]
        if d.phase == PREPARE:
            d.status, d.error, d.finished_at = INVALID, message, now
            return lines
        d.status, d.error = FAILED, message
        notify_failure(ctx, message)
        try:
            undo_on_failure = read_params(d.facts.get("params") or {}).undo_on_failure
        except KlinkError:
            undo_on_failure = False
        if undo_on_failure and not d.undo:
            lines.append("undoOnFailure: undoing")
            lines += start_undo(d)
        return lines

    def _apply_control(self, d: Deployment, control: str) -> list[str]:
        if d.status not in ACTIVE:
            return []
        if control == "pause":
            d.status = PAUSED
            return ["paused"]
        if control.startswith("cancel"):
            _, _, who = control.partition(":")
            return cancel(d, who or "a user")
        return []

    # Loops ---------------------------------------------------------------------------------
    def drain(self, max_steps: int = 100_000) -> None:
        """Run until nothing is active, sleeping (injected) until the next due deployment."""
        for _ in range(max_steps):
            if self.run_once():
                continue
            due = self.db.next_due()
            if due is None:
                return
            self.sleep(max(0.0, (due - self.clock()).total_seconds()))
        raise RuntimeError("the engine did not settle")


class EngineThreads:
    """``workers`` threads running ``Engine.run_once`` until stopped (``klink serve``/worker)."""

    def __init__(self, engine_factory: Callable[[], Engine], workers: int, idle: float = 0.2):
        self.engine_factory = engine_factory
        self.workers = max(1, workers)
        self.idle = idle
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for index in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"klink-engine-{index}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def _loop(self) -> None:
        engine = self.engine_factory()
        while not self.stopping.is_set():
            try:
                worked = engine.run_once()
            except Exception:
                log.exception("engine worker")
                worked = False
            if not worked:
                self.stopping.wait(self.idle)
        engine.close()

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout)
        self.threads.clear()
