"""The engine: runs persisted plans, one action at a time, resumable anywhere.

A worker claims a due deployment with a lease (holder id + expiry, renewed at every write), has
the executor run the action at the cursor, and writes the outcome (status, cursor, task row,
log lines) in one transaction guarded by that lease and by the status it read: a holder that
lost its lease, or whose deployment's status someone else changed, writes nothing and stops.
``Done`` moves the cursor on; ``RetryAfter`` sets ``not_before`` and lets the lease go, so a
waiting deployment occupies no worker; ``Failed`` ends a preparation ``invalid`` (slot
released) or a deployment ``failed`` (slot kept until undo, retry or unlock; the strategy's
failure path may start the undo at once). Every status change is a ``lifecycle`` transition;
controls requested while an action runs are applied when it ends. After a crash the action at
the cursor simply runs again: every action is idempotent. Clock and sleep are injected.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from klink.deploy import controls, lifecycle
from klink.deploy.actions.notify import notify_failure
from klink.deploy.context import Context, Services
from klink.deploy.executor import Executor, RetryPolicy
from klink.deploy.model import (
    ACTIVE,
    COMPLETED,
    PREPARE,
    Deployment,
    Done,
    Failed,
    RetryAfter,
)
from klink.deploy.store import DeploymentStore, TaskSoFar, TaskUpdate
from klink.deploy.strategies import strategy_of
from klink.errors import KlinkError

log = logging.getLogger(__name__)


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
        retry: RetryPolicy | None = None,
    ) -> None:
        self.db = db
        self.holder = holder or f"engine-{uuid.uuid4().hex[:12]}"
        self.lease_seconds = lease_seconds
        self.clock = clock or services.clock
        self.sleep = sleep
        self.executor = Executor(services, retry)
        self._current: str | None = None
        self._heartbeat: threading.Thread | None = None
        self._stopped = threading.Event()

    @property
    def services(self) -> Services:
        return self.executor.services

    @services.setter
    def services(self, services: Services) -> None:
        self.executor.services = services

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
        before = d.status
        started = so_far.started_at or self.clock()
        result = self.executor.run(
            d, current, attempt=so_far.attempts + 1, errors=so_far.errors, started_at=started
        )
        outcome = result.outcome
        now = self.clock()
        seq = d.cursor
        release, not_before, lines = False, None, list(result.logs)
        if isinstance(outcome, Done):
            status, message = "done", outcome.message
            d.cursor += 1
            if outcome.pause and d.status in ACTIVE:
                lifecycle.move(d, "pause_point")
            if d.cursor >= len(d.plan) and d.status in ACTIVE:
                lifecycle.move(d, "complete")
            if d.status == COMPLETED:
                d.finished_at = now
            release = d.status not in ACTIVE
        elif isinstance(outcome, RetryAfter):
            status, message = "waiting", outcome.reason
            not_before = now + timedelta(seconds=outcome.seconds)
            release = True
        else:
            status, message, release = "failed", outcome.message, True
            lines += self._fail(d, current, outcome, now)
        if message and not (status == "waiting" and message == so_far.message):
            lines.append(f"{current.name}: {message}")  # a wait logs each change, not each look
        task = TaskUpdate(
            seq=seq,
            action=current.name,
            phase=current.phase,
            attempts=so_far.attempts + 1,
            status=status,
            started_at=started,
            ended_at=None if status == "waiting" else now,
            message=message,
            exists=so_far.attempts > 0,
            errors=result.errors,
        )
        held = self.db.persist(
            d,
            holder=self.holder,
            expected_status=before,
            now=now,
            lease_seconds=self.lease_seconds,
            task=task,
            logs=lines,
            not_before=not_before or (now if d.status in ACTIVE else None),
            release=release,
            apply_control=controls.apply_requested,
        )
        return bool(held)

    def _fail(self, d: Deployment, current: object, outcome: Failed, now: datetime) -> list[str]:
        name = getattr(current, "name", "?")
        lines = [f"{name} failed: {outcome.message}"]
        preparing = d.phase == PREPARE
        lifecycle.move(d, "fail")
        d.error = outcome.message
        if preparing:
            d.finished_at = now
            return lines
        ctx = Context(d, self.services, d.plan[min(d.cursor, len(d.plan) - 1)])
        notify_failure(ctx, outcome.message)
        lines += ctx.logs
        try:
            on_failure = strategy_of(controls.params_of(d).strategy).on_failure(
                controls.params_of(d)
            )
        except (KlinkError, ValueError):
            on_failure = "hold"
        if on_failure == "undo" and not d.undo:
            lines.append("undoOnFailure: undoing")
            lines += controls.start_undo(d)
        return lines

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
    """``workers`` threads running ``Engine.run_once`` until stopped (``klink serve``/worker).

    An idle thread looks for due work every ``idle`` seconds (sooner when a waiting
    deployment is due before that), or at once when ``wake`` is set:
    the API sets it after creating or controlling a deployment in this process, so an undo
    does not wait for the next look (the 0.2 s poll alone was most of a warm undo)."""

    def __init__(self, engine_factory: Callable[[], Engine], workers: int, idle: float = 0.2):
        self.engine_factory = engine_factory
        self.workers = max(1, workers)
        self.idle = idle
        self.stopping = threading.Event()
        self.wake = threading.Event()
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
                self.wake.wait(self._nap(engine))
                self.wake.clear()
        engine.close()

    def _nap(self, engine: Engine) -> float:
        """Until the next due deployment (a wait's retry time), at most ``idle``: a wait of
        0.1 s is looked at after 0.1 s, not after the next idle poll."""
        try:
            due = engine.db.next_due()
        except Exception:
            log.exception("reading the next due deployment")
            return self.idle
        left = None if due is None else (due - engine.clock()).total_seconds()
        if left is None or left <= 0:
            return self.idle  # nothing waiting, or due but held by another engine right now
        return min(self.idle, left)

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        self.wake.set()
        for thread in self.threads:
            thread.join(timeout)
        self.threads.clear()
