"""Slack Block Kit for Klink's messages: a text section and the deployment's control buttons.

Shared by the engine's notifications (``slack_api``) and the chat service, so that a button
means the same wherever it was posted: ``action_id`` ``klink:VERB`` with the app, env and
deployment in its value; the chat service's ``/chat/slack/actions`` runs VERB with the rights
of whoever pressed it. In an environment marked as production (``production: true`` in its
metadata), the destructive button (Undo) asks for confirmation before Slack sends it.
"""

from __future__ import annotations

import json
from typing import Any

BUTTONS = (("pause", "Pause", None), ("resume", "Resume", None), ("undo", "Undo", "danger"))
DESTRUCTIVE = frozenset({"undo"})
TEXT_LIMIT = 2900  # a section's text may hold 3000 characters


def section(text: str) -> dict[str, Any]:
    if len(text) > TEXT_LIMIT:
        text = "…" + text[-TEXT_LIMIT:]
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def buttons(app: str, env: str, deployment: str | None, production: bool) -> dict[str, Any]:
    value = json.dumps({"app": app, "env": env, "deployment": deployment}, sort_keys=True)
    elements: list[dict[str, Any]] = []
    for verb, label, style in BUTTONS:
        button: dict[str, Any] = {
            "type": "button",
            "action_id": f"klink:{verb}",
            "text": {"type": "plain_text", "text": label},
            "value": value,
        }
        if style:
            button["style"] = style
        if production and verb in DESTRUCTIVE:
            button["confirm"] = {
                "title": {"type": "plain_text", "text": f"{label} in {env}?"},
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{env}* is production. {label} {app} there?",
                },
                "confirm": {"type": "plain_text", "text": label},
                "deny": {"type": "plain_text", "text": "Cancel"},
                "style": "danger",
            }
        elements.append(button)
    return {"type": "actions", "block_id": f"klink:{app}:{env}", "elements": elements}


def message(
    text: str,
    app: str | None = None,
    env: str | None = None,
    *,
    deployment: str | None = None,
    production: bool = False,
) -> list[dict[str, Any]]:
    blocks = [section(text)]
    if app and env:
        blocks.append(buttons(app, env, deployment, production))
    return blocks


def is_production(metadata: dict[str, Any] | None) -> bool:
    value = (metadata or {}).get("production")
    return value is True or (isinstance(value, str) and value.lower() in ("true", "yes", "1"))
