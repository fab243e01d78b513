"""Notifications: a notifier interface and the webhook notifiers (see ``webhook.py``).

``from_settings`` builds the one notifier of a running Klink (``Runtime.notifier``), used by
deployments and infrastructure drift alike.
"""

from typing import Any

from klink.notify.webhook import Dispatcher, SlackNotifier, WebhookNotifier

__all__ = ["Dispatcher", "SlackNotifier", "WebhookNotifier", "from_settings"]


def from_settings(settings: Any) -> Dispatcher:
    return Dispatcher(
        webhook_url=getattr(settings, "notify_webhook_url", "") or None,
        slack_url=getattr(settings, "notify_slack_url", "") or None,
    )
