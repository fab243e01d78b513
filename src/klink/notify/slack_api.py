"""Notifications through Slack's Web API (with ``KLINK_SLACK_BOT_TOKEN``): one message per
deployment and room, updated in place through the deployment's life, with its buttons.

The first event of a deployment is ``chat.postMessage``; the channel and ``ts`` Slack answers
are kept (``notify_messages``, by deployment id and room) and every later event of that
deployment is a ``chat.update`` of the same message. Its Pause, Resume and Undo buttons
(``slack_blocks``) are handled by the chat service, which checks the rights of whoever presses
them. This module is shared core: it knows Slack's API, not the chat service.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from klink import store
from klink.notify import slack_blocks
from klink.notify.tables import notify_messages

FINAL_EVENTS = frozenset({"complete", "failed"})


class MessageStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, deployment: str, room: str) -> tuple[str, str] | None:
        with store.read(self.engine) as conn:
            row = conn.execute(
                sa.select(notify_messages.c.channel, notify_messages.c.ts).where(
                    notify_messages.c.deployment == deployment, notify_messages.c.room == room
                )
            ).first()
        return (str(row[0]), str(row[1])) if row else None

    def put(self, deployment: str, room: str, channel: str, ts: str) -> None:
        with store.write(self.engine) as conn:
            conn.execute(
                notify_messages.delete().where(
                    notify_messages.c.deployment == deployment, notify_messages.c.room == room
                )
            )
            conn.execute(
                notify_messages.insert().values(
                    deployment=deployment,
                    room=room,
                    channel=channel,
                    ts=ts,
                    posted_at=datetime.now(UTC),
                )
            )


class SlackApiNotifier:
    """A RoomNotifier: ``room`` is a Slack channel (``#deploys`` or its id)."""

    def __init__(
        self,
        token: str,
        base_url: str,
        messages: MessageStore,
        production: Callable[[str], bool] = lambda env: False,
        timeout: int = 5,
    ) -> None:
        from slack_sdk import WebClient

        self.web = WebClient(token=token, base_url=base_url, timeout=timeout)
        self.messages = messages
        self.production = production

    def send_one(self, url: str, room: str, text: str, event: Mapping[str, Any]) -> None:
        deployment = str(event.get("deployment") or "")
        app, env = event.get("app"), event.get("env")
        status = f"{text}\n_{event.get('event', '')}_"
        blocks = slack_blocks.message(
            status,
            str(app) if app else None,
            str(env) if env else None,
            deployment=deployment or None,
            production=bool(env) and self.production(str(env)),
        )
        known = self.messages.get(deployment, room) if deployment else None
        if known is not None:
            channel, ts = known
            self.web.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
            return
        answer = self.web.chat_postMessage(channel=room, text=text, blocks=blocks)
        if deployment:
            self.messages.put(deployment, room, str(answer["channel"]), str(answer["ts"]))
