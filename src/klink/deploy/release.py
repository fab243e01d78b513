"""The release flow's commands, behind ``Commands``: promote, approve, reject, override.

- **promote** deploys to an environment the image that runs in another one now: the image of
  the source's current group, discovered from its provider (as every previous state is), with
  the target's own config at its HEAD or ``commit``. It is refused when nothing runs in the
  source or the image is embargoed from the target. The deployment records its lineage
  (``promotedFrom``: env, the deployment that made the source group, the group, the image).
  Without a source, the target's ``promotesFrom`` names it.
- **approve** / **reject** record a person's decision on a deployment that waits for, or has
  not yet reached, its approvals (``deploy_approvals``, with a log line, in one transaction).
  Approvers must hold one of the environment's ``approvals.roles``; with ``notTheRequester``
  the requester's own approval is refused; each person approves once. A rejection ends the
  deployment ``cancelled`` with the reason (``lifecycle``: a ``reject`` row).
- **override** (admin) lets a deployment through a closed window or a freeze, with a reason.

Every decision wakes the deployment (it becomes due), so the engine looks again at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from klink import names
from klink.auth.tokens import Principal
from klink.deploy import controls, reads, rules
from klink.deploy.actions.discover import current_group, group_state
from klink.deploy.actions.gates import UNGATED
from klink.deploy.approvals import (
    APPROVE,
    OVERRIDE,
    REJECT,
    Decision,
    Decisions,
    approvers,
    record,
)
from klink.deploy.model import ACTIVE, PAUSED, PREPARE, PREPARING, Deployment
from klink.deploy.preparation import Preparation
from klink.deploy.waiting import annotate
from klink.errors import Conflict, Forbidden, InvalidInput, NotFound
from klink.providers import base

if TYPE_CHECKING:
    from klink.deploy.commands import Actor, Commands


def env_rules(c: Commands, env: str) -> rules.Rules:
    record = c.services().metadata.environment(env)
    return rules.of(dict(record.get("metadata") or {}))


def check_window(c: Commands, env: str) -> None:
    """For a request that must not wait (``windowWait: false``): refused when closed."""
    opening = env_rules(c, env).opening(c.clock())
    if not opening.now:
        raise Conflict(
            f"{env} is closed for deployments ({opening.reason}); ask again without "
            "--no-window-wait to wait for it",
            field="window",
        )


def promote(
    c: Commands,
    actor: Actor,
    app: str,
    source: str | None,
    env: str,
    message: str,
    *,
    commit: str | None,
    dry_run: bool,
) -> dict[str, Any]:
    services = c.services()
    if source is None:
        source = env_rules(c, env).promotes_from
        if source is None:
            raise InvalidInput(
                f"environment {env} names no promotesFrom: say which environment to promote from",
                field="from",
            )
    names.check_name(source, "from")
    if source == env:
        raise InvalidInput(f"cannot promote {app} from {env} to itself", field="from")
    provider = reads.provider(services, source)
    group = current_group(provider, app, source)
    image = group_state(provider, group).image_id if group is not None else None
    if group is None or not image:
        raise Conflict(
            f"nothing runs in {app}/{source}: there is no image to promote", field="from"
        )
    try:
        found = reads.provider(services, env).describe_image(image)
    except NotFound:
        raise Conflict(
            f"image {image} (running in {source}) is not known in {env}", field="image"
        ) from None
    if env in found.embargo:
        raise Conflict(
            f"image {image} (running in {source}) is embargoed from {env}", field="image"
        )
    lineage = {
        "env": source,
        "deployment": group.tags.get(base.TAG_DEPLOYMENT),
        "group": group.name,
        "image": image,
    }
    d = c.new(actor, app, env, image, commit, message, "deploy")
    d.facts = Preparation(promoted_from=lineage).to_json()
    return {**c.start(d, dry_run), "promotedFrom": lineage}


def person(d: Deployment) -> str:
    """The requester, named as ``Actor`` names people."""
    return f"{d.user} via {d.via}" if d.via else d.user


def qualifies(principal: Principal, roles: tuple[str, ...], env: str) -> bool:
    return any(
        principal.can_deploy(env) if role == "deployer" else principal.has(role) for role in roles
    )


def _awaiting(d: Deployment, what: str) -> None:
    if d.kind in UNGATED or d.phase != PREPARE or d.status not in (*ACTIVE, PAUSED):
        raise Conflict(
            f"deployment {d.id} is {d.status} in its {d.phase} phase: it is not waiting to be "
            f"{what}",
            field="id",
        )


def approve(
    c: Commands, actor: Actor, principal: Principal, deployment_id: str, message: str
) -> dict[str, Any]:
    message = _message(message)
    d = c.store.get(deployment_id)
    wanted = env_rules(c, d.env).approvals
    if wanted is None:
        raise Conflict(f"environment {d.env} requires no approval", field="id")
    who, now = str(actor), c.clock()

    def change(conn: Any, d: Deployment, leased: bool) -> controls.Change:
        _awaiting(d, "approved")
        if wanted.not_the_requester and who == person(d):
            raise Forbidden(
                f"{who} requested deployment {d.id} and cannot approve it (notTheRequester)",
                field="id",
            )
        if not qualifies(principal, wanted.roles, d.env):
            raise Forbidden(
                f"approvals on {d.env} come from {wanted.who(d.env)}; token {principal.name!r} "
                f"has role {principal.role!r}",
                field="id",
            )
        before = approvers(Decisions(c.store.engine).of([d.id], conn).get(d.id, []))
        if who in before:
            raise Conflict(f"{who} has already approved deployment {d.id}", field="id")
        record(conn, d.id, Decision(APPROVE, who, principal.role, message, now))
        count = len(before) + 1
        line = f"approved by {who} ({count} of {wanted.required}): {message}"
        return [line], d.status in ACTIVE

    return _summary(c, c.store.control(deployment_id, change, now, name="approve"))


def reject(
    c: Commands, actor: Actor, principal: Principal, deployment_id: str, message: str
) -> dict[str, Any]:
    message = _message(message)
    d = c.store.get(deployment_id)
    wanted = env_rules(c, d.env).approvals
    if wanted is None:
        raise Conflict(
            f"environment {d.env} requires no approval: cancel the deployment instead", field="id"
        )
    if not (qualifies(principal, wanted.roles, d.env) or principal.can_deploy(d.env)):
        raise Forbidden(f"token {principal.name!r} may not reject deployments to {d.env}")
    who, now = str(actor), c.clock()

    def change(conn: Any, d: Deployment, leased: bool) -> controls.Change:
        _awaiting(d, "rejected")
        record(conn, d.id, Decision(REJECT, who, principal.role, message, now))
        return controls.reject(d, leased, f"{who}: {message}")

    return _summary(c, c.store.control(deployment_id, change, now, name="reject"))


def override(
    c: Commands, actor: Actor, principal: Principal, deployment_id: str, message: str
) -> dict[str, Any]:
    message = _message(message)
    principal.require("admin")
    d = c.store.get(deployment_id)
    found = env_rules(c, d.env)
    if not found.windows and not found.freezes:
        raise Conflict(f"environment {d.env} has no deployment window or freeze", field="id")
    who, now = str(actor), c.clock()

    def change(conn: Any, d: Deployment, leased: bool) -> controls.Change:
        _awaiting(d, "let through its window")
        record(conn, d.id, Decision(OVERRIDE, who, principal.role, message, now))
        return [f"window and freezes overridden by {who}: {message}"], d.status == PREPARING

    return _summary(c, c.store.control(deployment_id, change, now, name="override"))


def _message(message: str) -> str:
    if not message.strip():
        raise InvalidInput("a message is required (why)", field="message")
    return message.strip()


def _summary(c: Commands, d: Deployment) -> dict[str, Any]:
    """What a decision answers: the summary (with what it waits for now) and every decision."""
    annotate(c.store.engine, [d], every=True)
    return {**d.summary(), "approvals": [dict(x) for x in d.decisions]}
