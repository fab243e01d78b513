"""Drift: a scheduled reconcile per environment.

Every environment is checked on its own interval (environment metadata ``infra.drift``, on by
default, and ``infra.driftIntervalMinutes``, default 120). A check computes the plan of every
application that has an ``infrastructure.yaml`` in that environment against live state; a
non-empty plan is drift. The latest check of each app+env is kept (``GET /infra/drift``), drift
is announced to the app's rooms, and applied at once where the environment says
``infra.autoApply: true`` (recorded with actor "scheduler"). A failing app is recorded with its
error and does not stop the others. The loop's clock and sleep are injected.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from klink.errors import KlinkError, NotFound
from klink.infra import service, store
from klink.metadata.client import MetadataClient
from klink.service.runtime import Runtime

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = timedelta(hours=2)
TICK_SECONDS = 60.0
SCHEDULER = "scheduler"


def interval_of(env_metadata: Mapping[str, Any]) -> timedelta | None:
    """The environment's drift interval, or None when its drift checks are off."""
    infra = env_metadata.get("infra") or {}
    if infra.get("drift", True) is False:
        return None
    minutes = infra.get("driftIntervalMinutes")
    if isinstance(minutes, int) and not isinstance(minutes, bool) and minutes > 0:
        return timedelta(minutes=minutes)
    return DEFAULT_INTERVAL


def rooms_of(app_metadata: Mapping[str, Any], env: str) -> list[str]:
    """The app's rooms for ``env`` (application metadata ``deploymentRooms``)."""
    raw = app_metadata.get("deploymentRooms") or {}
    value = raw.get(env) if isinstance(raw, dict) else None
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def notify_drift(
    runtime: Runtime,
    app: str,
    env: str,
    app_metadata: Mapping[str, Any],
    report: Mapping[str, Any],
    outcome: str | None = None,
) -> None:
    """Tell the app's rooms (a failed notification is logged, never raised); ``outcome`` says
    what automatic apply did, through the runtime's one notifier (built from settings)."""
    lines = [a["line"] for a in report.get("actions", [])]
    text = f"Infrastructure drift in {app}/{env}: " + "; ".join(lines)
    if outcome:
        text += f" ({outcome})"
    log.warning("%s", text)
    targets = rooms_of(app_metadata, env)
    if not targets:
        return
    notifier = runtime.notifier
    event = {"event": "infra_drift", "app": app, "env": env, "outcome": outcome, **dict(report)}
    notifier.send(targets, text, event)


def check_app(
    runtime: Runtime,
    app: str,
    env: str,
    env_metadata: Mapping[str, Any],
    app_metadata: Mapping[str, Any] | None = None,
) -> None:
    now = runtime.clock()
    try:
        shown = service.plan(runtime, app, env)
    except NotFound:
        return  # no infrastructure.yaml for this app here: nothing to reconcile
    except KlinkError as exc:
        store.record_drift(
            runtime.engine, app, env, now=now, commit=None, plan=None, error=str(exc)
        )
        return
    apply_id = None
    if not shown.plan.empty:
        outcome = None
        if (env_metadata.get("infra") or {}).get("autoApply") is True:
            try:
                entry = service.apply(
                    runtime,
                    app,
                    env,
                    actor=SCHEDULER,
                    at=shown.commit,
                    plan_hash=shown.plan.plan_hash,
                )
                apply_id = int(entry["id"])
                outcome = f"applied automatically: {entry['status']}"
            except KlinkError as exc:
                outcome = f"automatic apply refused: {exc.message}"
        notify_drift(runtime, app, env, app_metadata or {}, shown.to_json(), outcome)
    store.record_drift(
        runtime.engine, app, env, now=now, commit=shown.commit, plan=shown.plan, apply_id=apply_id
    )


def check_env(runtime: Runtime, env: str, env_metadata: Mapping[str, Any]) -> None:
    store.mark_run(runtime.engine, env, runtime.clock())
    for record in MetadataClient(runtime.http("metadata")).applications():
        check_app(runtime, record["name"], env, env_metadata, record.get("metadata") or {})


def run_due(runtime: Runtime, *, force: bool = False, only: str | None = None) -> list[str]:
    """Check every environment whose interval has passed (all of them with ``force``);
    the names of the environments checked."""
    checked = []
    now = runtime.clock()
    for record in MetadataClient(runtime.http("metadata")).environments():
        name, metadata = record["name"], record["metadata"]
        if only is not None and name != only:
            continue
        interval = interval_of(metadata)
        if interval is None and not force:
            continue
        last = store.last_run(runtime.engine, name)
        if force or last is None or interval is None or now - last >= interval:
            check_env(runtime, name, metadata)
            checked.append(name)
    return checked


class DriftScheduler:
    """A daemon thread that calls ``run_due`` every ``tick`` seconds until stopped."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        tick: float = TICK_SECONDS,
        wait: Callable[[threading.Event, float], bool] | None = None,
    ) -> None:
        self.runtime = runtime
        self.tick = tick
        self.stopped = threading.Event()
        self.wait = wait or (lambda event, seconds: event.wait(seconds))
        self.thread: threading.Thread | None = None
        self.runs = 0

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="infra-drift", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        # Wait one tick first: at start-up the services this calls may not be listening yet.
        while not self.wait(self.stopped, self.tick):
            try:
                run_due(self.runtime)
            except Exception:
                log.exception("infrastructure drift check")
            self.runs += 1

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
