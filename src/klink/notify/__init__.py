"""Notifications: a notifier interface and the webhook notifiers (see ``webhook.py``)."""

from klink.notify.webhook import Dispatcher, SlackNotifier, WebhookNotifier

__all__ = ["Dispatcher", "SlackNotifier", "WebhookNotifier"]
