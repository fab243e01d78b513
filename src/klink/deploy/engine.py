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

An engine never acts on a lease it may have lost: it knows until when its lease holds (the
time it sent the write that set it, plus the lease) and, before each action, stops without
acting once less than a third of the lease is left, or once a heartbeat found it taken. A
process paused or cut from the database longer than its lease therefore makes no cloud call
for a deployment that another worker has taken over meanwhile. What it sees (claims and their
latency, takeovers, actions, lost leases) goes to an ``EngineObserver`` (metrics by default).
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
from klink.deploy.metrics import ENGINE_METRICS
from klink.deploy.model import (
    ACTIVE,
    COMPLETED,
    PREPARE,
    Deployment,
    Done,
    Failed,
    RetryAfter,
)
from klink.deploy.observe import EngineObserver, worker_name
from klink.deploy.store import DeploymentStore, TaskSoFar, TaskUpdate
from klink.deploy.strategies import strategy_of
from klink.deploy.wakeup import Wakeup, idle_seconds
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
        observer: EngineObserver | None = None,
        worker: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.worker = worker or worker_name()
        self.holder = holder or f"{self.worker}-{uuid.uuid4().hex[:6]}"
        self.observer = observer or ENGINE_METRICS
        self.monotonic = monotonic
        # On ``monotonic``: when the held lease may be gone; None while no lease is tracked
        # (``work`` called directly after a ``claim`` of the caller's).
        self._lease_until: float | None = None
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
                sent = self.monotonic()
                try:
                    held = self.db.renew(current, self.holder, self.clock(), self.lease_seconds)
                except Exception:
                    log.exception("renewing the lease of %s", current)
                    continue
                if self._current == current:
                    self._lease_until = sent + self.lease_seconds if held else float("-inf")

    def close(self) -> None:
        self._stopped.set()

    # One deployment ----------------------------------------------------------------------
    def run_once(self) -> bool:
        """Claim one due deployment and work on it until it waits, pauses or ends."""
        sent = self.monotonic()
        claimed = self.db.claim_one(self.holder, self.clock(), self.lease_seconds)
        if claimed is None:
            return False
        deployment_id = claimed.id
        self._lease_until = sent + self.lease_seconds
        self.observer.claimed(
            self.worker, deployment_id, claimed.latency, takeover=claimed.takeover
        )
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
            self._lease_until = None
        return True

    def lease_held(self, deployment_id: str) -> bool:
        """Whether this engine may still act: more than a third of its lease left (the
        heartbeat renews it every third), else it stops and leaves the deployment to whoever
        takes the lease."""
        if self._lease_until is None:
            return True
        left = self._lease_until - self.monotonic()
        if left > self.lease_seconds / 3:
            return True
        reason = "taken by another holder" if left == float("-inf") else f"{left:.1f}s left"
        log.warning(
            "%s stops on %s without acting: its lease may be gone (%s)",
            self.holder,
            deployment_id,
            reason,
        )
        self.observer.lease_lost(self.worker, deployment_id, reason)
        return False

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
        if not self.lease_held(d.id):
            return False
        before = d.status
        started = so_far.started_at or self.clock()
        attempt, began = so_far.attempts + 1, time.perf_counter()
        self.observer.action_started(self.worker, self.holder, d.id, d.cursor, attempt)
        result = self.executor.run(
            d, current, attempt=attempt, errors=so_far.errors, started_at=started
        )
        outcome = result.outcome
        now = self.clock()
        seq = d.cursor
        release, not_before, lines = False, None, list(result.logs)
        if isinstance(outcome, Done):
            status, message = "done", outcome.message
            d.cursor += 1
            if outcome.pause and d.status in ACTIVE:
                lifecycle.move(d, "pause_point", hold=f"paused at {outcome.pause}")
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
        self.observer.action_ended(
            self.worker, d.id, seq, attempt, status, time.perf_counter() - began
        )
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
        sent = self.monotonic()
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
        if held:
            self._lease_until = sent + self.lease_seconds
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

    An idle thread sleeps until the next claimable deployment is due, at most ``idle``
    seconds, and wakes at once when work is announced (``klink.deploy.wakeup``)."""

    def __init__(self, engine_factory: Callable[[], Engine], workers: int, idle: float = 0.2):
        self.engine_factory = engine_factory
        self.workers = max(1, workers)
        self.idle = idle
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.wakeup: Wakeup | None = None
        self._wakeup_lock = threading.Lock()

    def start(self) -> None:
        for index in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"klink-engine-{index}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def _loop(self) -> None:
        engine = self.engine_factory()
        with self._wakeup_lock:
            if self.wakeup is None:
                self.wakeup = Wakeup(engine.db.engine)
            wakeup = self.wakeup
        while not self.stopping.is_set():
            try:
                worked = engine.run_once()
            except Exception:
                log.exception("engine worker")
                worked = False
            if not worked:
                try:
                    pause = idle_seconds(
                        engine.db.next_claimable(engine.clock()), engine.clock(), self.idle
                    )
                except Exception:
                    pause = self.idle
                wakeup.wait(pause)
        engine.close()

    def wake(self) -> None:
        """Wake the idle threads at once: the API calls it after creating or controlling a
        deployment in this process (on SQLite nothing else announces it, and the idle bound
        alone was most of an undo while warm)."""
        wakeup = self.wakeup
        if wakeup is not None:
            wakeup.event.set()

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        if self.wakeup is not None:
            self.wakeup.close()
            self.wakeup.event.set()
        for thread in self.threads:
            thread.join(timeout)
        self.threads.clear()
