"""Webhook notifiers: a generic JSON webhook and a Slack-compatible incoming webhook.

A room is a chat room name (``#search``) or a URL. Room names go to each configured notifier:
the generic webhook (``KLINK_NOTIFY_WEBHOOK_URL``) receives Klink's JSON event
(``{"text", "room", "event": {...}}``), the Slack-compatible incoming webhook
(``KLINK_NOTIFY_SLACK_URL``) receives ``{"channel", "text"}``, and with a bot token Slack's
Web API gets one message per deployment, updated in place (``slack_api.py``). A room that is
itself a URL gets the generic body (``https://…``) or the Slack body (``slack+https://…``)
directly.
``Dispatcher`` sends with a short timeout and returns the problems instead of raising: a
notification never fails a deployment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

log = logging.getLogger(__name__)

Post = Callable[[str, dict[str, Any]], int]


class RoomNotifier(Protocol):
    def send_one(self, url: str, room: str, text: str, event: Mapping[str, Any]) -> None: ...


def http_post(timeout: float) -> Post:
    def post(url: str, body: dict[str, Any]) -> int:
        import httpx

        response = httpx.post(url, json=body, timeout=timeout)
        return response.status_code

    return post


class WebhookNotifier:
    """Generic JSON webhook: the whole event, for any receiver."""

    def __init__(self, post: Post) -> None:
        self.post = post

    def send_one(self, url: str, room: str, text: str, event: Mapping[str, Any]) -> None:
        status = self.post(url, {"text": text, "room": room, "event": dict(event)})
        if status >= 300:
            raise RuntimeError(f"HTTP {status}")


class SlackNotifier:
    """Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat accept this body)."""

    def __init__(self, post: Post) -> None:
        self.post = post

    def send_one(self, url: str, room: str, text: str, event: Mapping[str, Any]) -> None:
        body = {"text": text}
        if not room.startswith(("http://", "https://", "slack+")):
            body["channel"] = room
        status = self.post(url, body)
        if status >= 300:
            raise RuntimeError(f"HTTP {status}")


class Dispatcher:
    """Sends to rooms by their scheme; never raises."""

    def __init__(
        self,
        post: Post | None = None,
        timeout: float = 5.0,
        *,
        webhook_url: str | None = None,
        slack_url: str | None = None,
        slack_api: RoomNotifier | None = None,
    ) -> None:
        post = post or http_post(timeout)
        self.slack_api = slack_api
        self.webhook = WebhookNotifier(post)
        self.slack = SlackNotifier(post)
        self.webhook_url = webhook_url
        self.slack_url = slack_url

    def send(self, rooms: list[str], message: str, event: Mapping[str, Any]) -> list[str]:
        problems: list[str] = []
        for room in rooms:
            try:
                if room.startswith("slack+http"):
                    self.slack.send_one(room.removeprefix("slack+"), room, message, event)
                elif room.startswith(("http://", "https://")):
                    self.webhook.send_one(room, room, message, event)
                elif self.webhook_url or self.slack_url or self.slack_api:
                    if self.webhook_url:
                        self.webhook.send_one(self.webhook_url, room, message, event)
                    if self.slack_url:
                        self.slack.send_one(self.slack_url, room, message, event)
                    if self.slack_api:
                        self.slack_api.send_one("", room, message, event)
                else:
                    raise ValueError(
                        "no notifier configured (KLINK_NOTIFY_WEBHOOK_URL, KLINK_NOTIFY_SLACK_URL, "
                        "KLINK_SLACK_BOT_TOKEN)"
                    )
            except Exception as exc:
                log.warning("notification to %s failed: %s", _safe(room), exc)
                problems.append(f"{_safe(room)}: {exc}")
        return problems


def _safe(room: str) -> str:
    """A room URL without its path (incoming-webhook paths are secrets)."""
    scheme, _, rest = room.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/…"
