"""Kept groups go when their time is up.

``keepPreviousGroup`` keeps the old group out of traffic, tagged ``klink:kept=true`` and
``klink:remove-after`` (an ISO time, ``KEEP_DAYS`` after the deployment), so that a rollback can
re-enable it at once. ``remove_expired`` (run by the deploy service's scheduler, every few
minutes) deletes every kept group whose time has passed, with its launch template, writes a log
line and tells the app's rooms. An app+env with a deployment in progress is left for the next
round, so a rollback that is re-enabling that group is never raced.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from klink.deploy.actions.discover import TAG_KEPT
from klink.deploy.actions.retire import TAG_REMOVE_AFTER
from klink.deploy.context import Services
from klink.deploy.store import DeploymentStore
from klink.errors import KlinkError
from klink.providers import base

log = logging.getLogger(__name__)

TICK_SECONDS = 300.0
_ANY_GROUP = r"[a-z][a-z0-9]{0,31}-[a-z][a-z0-9]{0,31}-v\d{3}"


def _due(raw: str | None, now: datetime) -> bool:
    if not raw:
        return False
    try:
        when = datetime.strptime(raw, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return False
    return when <= now


def _rooms(app_metadata: dict[str, Any], env: str) -> list[str]:
    raw = app_metadata.get("deploymentRooms") or {}
    value = raw.get(env) if isinstance(raw, dict) else None
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def remove_expired(services: Services, store: DeploymentStore) -> list[str]:
    """Delete every kept group past its ``klink:remove-after``; the names removed."""
    now = services.clock()
    removed: list[str] = []
    for record in services.metadata.environments():
        env = str(record.get("name"))
        metadata = dict(record.get("metadata") or {})
        try:
            provider = services.provider_for(env, metadata)
            groups = provider.list_groups(_ANY_GROUP)
        except KlinkError as exc:
            log.warning("kept groups of %s not checked: %s", env, exc.message)
            continue
        for group in groups:
            if group.tags.get(TAG_KEPT) != "true" or group.status is not None:
                continue
            if not _due(group.tags.get(TAG_REMOVE_AFTER), now):
                continue
            app = group.tags.get(base.TAG_APP) or group.name.split("-", 1)[0]
            if group.tags.get(base.TAG_ENV, env) != env or store.slot_holder(app, env):
                continue
            removed.append(_remove(services, provider, app, env, group))
    return removed


def _remove(
    services: Services, provider: base.Provider, app: str, env: str, group: base.Group
) -> str:
    provider.delete_group(group.name, force=True)
    if group.launch_template:
        try:
            provider.delete_launch_template(group.launch_template)
        except KlinkError as exc:
            log.warning("launch template %s of %s: %s", group.launch_template, group.name, exc)
    text = (
        f"Kept group {group.name} of {app}/{env} removed: its keep period ended "
        f"({group.tags.get(TAG_REMOVE_AFTER)})"
    )
    log.info("%s", text)
    try:
        rooms = _rooms(dict(services.metadata.application(app).get("metadata") or {}), env)
    except KlinkError:
        rooms = []
    if rooms:
        event = {"event": "kept_group_removed", "app": app, "env": env, "group": group.name}
        services.notifier.send(rooms, text, event)
    return group.name


class ExpiryScheduler:
    """A daemon thread that runs ``remove_expired`` every ``tick`` seconds until stopped."""

    def __init__(
        self,
        services: Callable[[], Services],
        store: DeploymentStore,
        tick: float = TICK_SECONDS,
    ) -> None:
        self.services = services
        self.store = store
        self.tick = tick
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="deploy-expiry", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopped.wait(self.tick):
            try:
                remove_expired(self.services(), self.store)
            except Exception:
                log.exception("removing expired kept groups")

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
