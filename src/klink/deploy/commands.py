"""The one facade of the deploy service's commands: what the HTTP routes call (and, through
those routes, the CLI, the chat bot and anything else).

Every command takes the ``Actor`` (a token's name, and the front door a person used, if any:
``ci-bot via slack:U123``), checks what it must, and either creates a deployment (deploy,
rollback, redeploy, resize: all recorded, logged and holding the app+env slot), applies a
control through the state machine (pause, resume, cancel, retry, undo, unlock), records a
person's decision on the release rules (approve, reject, override: ``release.py``, which also
promotes), or sets the global lock. Rights (deployer on the environment, admin for unlock
and the lock) are checked by the caller's principal before it gets here; an approval's rights
are the environment's own rule, checked by the command with the principal it is given.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from klink import names
from klink.auth.tokens import Principal
from klink.deploy import controls, dryrun, release
from klink.deploy import plan as planner
from klink.deploy.context import Services
from klink.deploy.model import Deployment, GroupState
from klink.deploy.preparation import Preparation
from klink.deploy.store import DeploymentStore
from klink.errors import Conflict, InvalidInput, NotFound

MAX_SIZE = 1000
# Deployments whose record says what ran before and after (rollback and undo start from them).
RELEASES = ("deploy", "rollback", "redeploy")


@dataclass(frozen=True)
class Actor:
    name: str
    via: str | None = None  # e.g. "slack:U123", when acting on behalf of a chat user

    def __str__(self) -> str:
        return f"{self.name} via {self.via}" if self.via else self.name


@dataclass
class Commands:
    store: DeploymentStore
    services: Callable[[], Services]
    clock: Callable[[], datetime]
    # Called after a deployment is created or controlled: wakes this process's idle engine.
    wake: Callable[[], None] | None = None

    def _woken(self, result: dict[str, Any]) -> dict[str, Any]:
        if self.wake is not None:
            self.wake()
        return result

    # Creating deployments ----------------------------------------------------------------
    def deploy(
        self,
        actor: Actor,
        app: str,
        env: str,
        image: str | None,
        message: str,
        *,
        commit: str | None = None,
        dry_run: bool = False,
        window_wait: bool = True,
    ) -> dict[str, Any]:
        _target(app, env)
        if not image:
            raise InvalidInput("image is required (klink deploy offers the newest)", field="image")
        if not window_wait and not dry_run:
            release.check_window(self, env)
        d = self.new(actor, app, env, image, commit, message, "deploy")
        return self.start(d, dry_run)

    def promote(
        self,
        actor: Actor,
        app: str,
        source: str | None,
        env: str,
        message: str,
        *,
        commit: str | None = None,
        dry_run: bool = False,
        window_wait: bool = True,
    ) -> dict[str, Any]:
        """Deploy to ``env`` the image that runs in ``source`` now (``env``'s promotesFrom
        when None), with ``env``'s own config."""
        _target(app, env)
        if not window_wait and not dry_run:
            release.check_window(self, env)
        return release.promote(
            self, actor, app, source, env, message, commit=commit, dry_run=dry_run
        )

    # The release rules: people's decisions on a deployment ------------------------------
    def approve(
        self, actor: Actor, principal: Principal, deployment_id: str, message: str
    ) -> dict[str, Any]:
        return release.approve(self, actor, principal, deployment_id, message)

    def reject(
        self, actor: Actor, principal: Principal, deployment_id: str, message: str
    ) -> dict[str, Any]:
        return release.reject(self, actor, principal, deployment_id, message)

    def override(
        self, actor: Actor, principal: Principal, deployment_id: str, message: str
    ) -> dict[str, Any]:
        """An admin lets a deployment through its closed window or freeze (recorded)."""
        return release.override(self, actor, principal, deployment_id, message)

    def rollback(
        self, actor: Actor, app: str, env: str, message: str = "", *, dry_run: bool = False
    ) -> dict[str, Any]:
        _target(app, env)
        previous = GroupState.from_json(self._last(app, env).previous_state)
        if previous is None or not previous.image_id:
            raise Conflict(f"the last deployment of {app}/{env} had no previous group", field="app")
        message = message or f"rollback to {previous.image_id}"
        d = self.new(
            actor, app, env, previous.image_id, previous.config_commit, message, "rollback"
        )
        return self.start(d, dry_run)

    def redeploy(
        self, actor: Actor, app: str, env: str, message: str = "", *, dry_run: bool = False
    ) -> dict[str, Any]:
        _target(app, env)
        last = self._last(app, env)
        message = message or f"redeploy {last.image} with the newest config"
        d = self.new(actor, app, env, last.image, None, message, "redeploy")
        return self.start(d, dry_run)

    def resize(
        self, actor: Actor, app: str, env: str, *, min_size: int, max_size: int, desired: int
    ) -> dict[str, Any]:
        _target(app, env)
        for field, value in (("min", min_size), ("max", max_size), ("desired", desired)):
            if isinstance(value, bool) or not 0 <= value <= MAX_SIZE:
                raise InvalidInput(f"{field} must be between 0 and {MAX_SIZE}", field=field)
        if not min_size <= desired <= max_size:
            raise InvalidInput("sizes must satisfy min <= desired <= max", field="desired")
        message = f"resize to min {min_size}, max {max_size}, desired {desired}"
        d = self.new(actor, app, env, None, None, message, "resize", plan=planner.RESIZE)
        d.facts = Preparation(
            resize={"min": min_size, "max": max_size, "desired": desired}
        ).to_json()
        return self.start(d, False)

    # Controls ----------------------------------------------------------------------------
    def pause(self, actor: Actor, app: str, env: str, message: str = "") -> dict[str, Any]:
        who = f"{actor}: {message.strip()}" if message.strip() else str(actor)
        return self._control(app, env, "pause", lambda d, leased: controls.pause(d, leased, who))

    def resume(self, actor: Actor, app: str, env: str) -> dict[str, Any]:
        return self._control(app, env, "resume", lambda d, leased: controls.resume(d, str(actor)))

    def cancel(self, actor: Actor, app: str, env: str) -> dict[str, Any]:
        return self._control(
            app, env, "cancel", lambda d, leased: controls.cancel_request(d, leased, str(actor))
        )

    def retry(self, actor: Actor, app: str, env: str) -> dict[str, Any]:
        _target(app, env)

        def change(conn: Any, d: Deployment, leased: bool) -> controls.Change:
            reset = lambda seq: self.store.reset_task(conn, d.id, seq)  # noqa: E731
            return controls.retry(d, str(actor), reset)

        holder = self._holder(app, env)
        return self._woken(self.store.control(holder, change, self.clock(), name="retry").summary())

    def undo(
        self, actor: Actor, app: str, env: str, message: str = "", *, dry_run: bool = False
    ) -> dict[str, Any]:
        _target(app, env)
        who = f"{actor}: {message}" if message else str(actor)
        holder = self.store.slot_holder(app, env)
        if holder is None:
            # Nothing in progress: undo the last deployment if it completed.
            last = self.store.find(app=app, env=env, limit=1, kinds=RELEASES)
            if not last:
                raise NotFound(f"{app}/{env} has no deployment to undo", field="app")
            if dry_run:
                controls.undo_completed(last[0], who)
                return dryrun.undo(last[0], self.services())
            reopened = self.store.reopen(
                last[0].id,
                lambda c, d, leased: controls.undo_completed(d, who),
                self.clock(),
            )
            return self._woken(reopened.summary())
        if dry_run:
            d = self.store.get(holder)
            controls.undo(d, False, who)  # the same checks as a real undo
            return dryrun.undo(d, self.services())
        return self._control(app, env, "undo", lambda d, leased: controls.undo(d, leased, who))

    def unlock(self, actor: Actor, app: str, env: str) -> dict[str, Any]:
        _target(app, env)
        holder = self._holder(app, env)
        d = self.store.control(
            holder,
            lambda c, d, leased: controls.unlock(d, str(actor)),
            self.clock(),
            name="unlock",
        )
        self.store.unlock_slot(app, env, holder)
        return d.summary()

    def lock(self, actor: Actor, message: str) -> dict[str, Any]:
        if not message.strip():
            raise InvalidInput("a message is required", field="message")
        self.store.set_lock(message.strip(), str(actor), self.clock())
        return {"locked": True, "message": message.strip(), "actor": str(actor)}

    def unlock_all(self, actor: Actor) -> dict[str, Any]:
        return {"locked": False, "was": self.store.clear_lock(), "actor": str(actor)}

    # Helpers -----------------------------------------------------------------------------
    def new(
        self,
        actor: Actor,
        app: str,
        env: str,
        image: str | None,
        commit: str | None,
        message: str,
        kind: str,
        plan: tuple[Any, ...] = planner.PREPARATION,
    ) -> Deployment:
        if not message.strip():
            raise InvalidInput("a message is required", field="message")
        if commit is not None:
            names.check_ref(commit, "commit")
        return Deployment(
            id=uuid.uuid4().hex[:12],
            app=app,
            env=env,
            image=image,
            commit=commit,
            user=actor.name,
            via=actor.via,
            message=message.strip(),
            kind=kind,
            plan=list(plan),
        )

    def start(self, d: Deployment, dry_run: bool) -> dict[str, Any]:
        if dry_run:
            return dryrun.deployment(d, self.services())
        self.store.create(d, self.clock())
        return self._woken(
            {"id": d.id, "status": d.status, "app": d.app, "env": d.env, "image": d.image}
        )

    def _last(self, app: str, env: str) -> Deployment:
        last = self.store.last_completed(app, env, kinds=RELEASES)
        if last is None:
            raise Conflict(f"{app}/{env} has no completed deployment", field="app")
        return last

    def _holder(self, app: str, env: str) -> str:
        holder = self.store.slot_holder(app, env)
        if holder is None:
            raise NotFound(f"{app}/{env} has no deployment in progress", field="app")
        return holder

    def _control(
        self, app: str, env: str, name: str, change: Callable[[Deployment, bool], controls.Change]
    ) -> dict[str, Any]:
        _target(app, env)
        d = self.store.control(
            self._holder(app, env),
            lambda conn, d, leased: change(d, leased),
            self.clock(),
            name=name,
        )
        return self._woken(d.summary())


def _target(app: str, env: str) -> None:
    names.check_name(app, "app")
    names.check_name(env, "env")
