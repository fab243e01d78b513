"""Notifications: one Dispatcher, built from settings, for deploy and drift.

``webhook.py`` has the generic JSON webhook and the Slack-compatible incoming webhook;
``slack_api.py`` the Slack Web API sender (one message per deployment, updated in place, with
buttons), used when ``KLINK_SLACK_BOT_TOKEN`` is set. ``dispatcher_for(runtime)`` builds the one
Dispatcher a process uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from klink.notify.webhook import Dispatcher, SlackNotifier, WebhookNotifier

if TYPE_CHECKING:
    from klink.service.runtime import Runtime

__all__ = ["Dispatcher", "SlackNotifier", "WebhookNotifier", "dispatcher_for"]


def dispatcher_for(runtime: Runtime) -> Dispatcher:
    """The Dispatcher of ``runtime``'s settings: webhooks, and Slack's Web API with a bot
    token (an environment's ``production`` metadata read through the metadata service)."""
    settings = runtime.settings
    slack_api = None
    if settings.slack_bot_token:
        from klink.errors import KlinkError
        from klink.notify import slack_blocks
        from klink.notify.slack_api import MessageStore, SlackApiNotifier
        from klink.service.client import ServiceClient

        def production(env: str) -> bool:
            # Through the metadata service's HTTP API (shared core imports no service).
            try:
                record = ServiceClient(runtime.http("metadata")).request(
                    "GET", f"/environments/{env}"
                )
            except KlinkError:
                return False
            return isinstance(record, dict) and slack_blocks.is_production(record.get("metadata"))

        slack_api = SlackApiNotifier(
            settings.slack_bot_token,
            settings.slack_api_url,
            MessageStore(runtime.engine),
            production,
        )
    return Dispatcher(
        webhook_url=settings.notify_webhook_url or None,
        slack_url=settings.notify_slack_url or None,
        slack_api=slack_api,
    )
