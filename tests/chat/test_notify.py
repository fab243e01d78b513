"""Notifications through Slack's Web API: one message per deployment and room, updated in
place, with buttons that ask first in production and go through the same rights check."""

from __future__ import annotations

import logging

import pytest

from klink.notify import Dispatcher, dispatcher_for
from tests.chat.conftest import Chat


def event(kind: str, env: str = "prod", deployment: str = "d0001") -> dict[str, object]:
    return {"event": kind, "deployment": deployment, "app": "search", "env": env, "user": "ci"}


def room_messages(chat: Chat, room: str) -> list[dict[str, object]]:
    return [m for (channel, _), m in chat.slack.messages.items() if channel == room]


def test_one_message_per_deployment_updated_in_place(chat: Chat) -> None:
    with chat.http() as http:
        prod = {"metadata": {"provider": "local", "production": True}}
        assert http.put("/metadata/environments/prod", json=prod).status_code < 300
        poke = {"metadata": {"provider": "local"}}
        assert http.put("/metadata/environments/poke", json=poke).status_code < 300
    notifier = dispatcher_for(chat.runtime)
    assert notifier.send(["#search"], "Deploying search/prod", event("start")) == []
    assert notifier.send(["#search"], "Deployed search/prod: completed", event("complete")) == []
    (message,) = room_messages(chat, "#search")
    assert len(chat.slack.called("chat.postMessage")) == 1
    assert len(chat.slack.called("chat.update")) == 1
    assert message["text"] == "Deployed search/prod: completed"
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]  # type: ignore[attr-defined]
    undo = actions["elements"][2]
    assert undo["action_id"] == "klink:undo"
    assert "production" in undo["confirm"]["text"]["text"]  # asks first, in production
    assert "confirm" not in actions["elements"][0]  # pausing is not destructive

    # Another deployment is another message; a non-production environment does not ask.
    assert notifier.send(["#search"], "Deploying search/poke", event("start", "poke", "d2")) == []
    newest = [m for m in room_messages(chat, "#search") if "poke" in str(m["text"])]
    (actions,) = [b for b in newest[0]["blocks"] if b["type"] == "actions"]  # type: ignore[attr-defined]
    assert all("confirm" not in e for e in actions["elements"])
    assert len(chat.slack.called("chat.postMessage")) == 2


def test_a_failing_slack_never_raises(chat: Chat) -> None:
    chat.slack.token = "xoxb-another"  # Klink's token is now refused: invalid_auth
    problems = dispatcher_for(chat.runtime).send(["#search"], "hi", event("start"))
    assert len(problems) == 1
    assert "invalid_auth" in problems[0]
    assert Dispatcher().send(["#x"], "hi", {}) != []  # nothing configured: a problem, no raise


def test_notification_buttons_check_the_presser(
    chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with chat.http() as http:
        assert (
            http.put(
                "/metadata/environments/prod", json={"metadata": {"provider": "local"}}
            ).status_code
            < 300
        )
    dispatcher_for(chat.runtime).send(["#search"], "Deploying search/prod", event("start"))
    (message,) = room_messages(chat, "#search")
    actions = f"{chat.url}/chat/slack/actions"
    # Unlinked: refused to them only.
    assert chat.slack.press(actions, message, "klink:pause", user="UANY").status_code == 200
    refused = chat.slack.wait_for(lambda: chat.slack.called("response:a1"))
    assert refused[0].body["response_type"] == "ephemeral"
    assert "only read" in refused[0].body["text"]
    # Undo of a deployment that is not the latest of search/prod: refused, nothing runs.
    chat.link("UDEP", chat.token("dora", "deployer"))
    assert (
        chat.slack.press(actions, message, "klink:undo", user="UDEP", name="a2").status_code == 200
    )
    stale = chat.slack.wait_for(lambda: chat.slack.called("response:a2"))
    assert "no longer the latest" in stale[0].body["text"]
    # A linked deployer's Pause runs, as dora, and its answer replaces the message in place.
    before = chat.slack.messages[("#search", str(message["ts"]))].get("updates", 0)
    assert (
        chat.slack.press(actions, message, "klink:pause", user="UDEP", name="a3").status_code == 200
    )
    chat.idle()
    after = chat.slack.messages[("#search", str(message["ts"]))]
    assert after.get("updates", 0) > before
    assert "`/klink pause search prod` by dora via slack:T0FAKE/UDEP" in str(after["text"])
    assert "failed" in str(after["text"])  # nothing is in progress to pause: the API said so
    logged = caplog.text
    for secret in (chat.slack.token, chat.slack.signing_secret, chat.runtime.internal_token):
        assert secret not in logged


def test_a_forged_button_is_refused(chat: Chat) -> None:
    actions = f"{chat.url}/chat/slack/actions"
    message = {
        "channel": "C1",
        "ts": "1.1",
        "blocks": [
            {
                "type": "actions",
                "elements": [
                    {"action_id": "klink:undo", "value": '{"app": "x --yes", "env": "prod"}'},
                    {"action_id": "klink:lock", "value": '{"app": "x", "env": "prod"}'},
                ],
            }
        ],
    }
    for action in ("klink:undo", "klink:lock"):
        answer = chat.slack.press(actions, message, action, user="U1")
        assert answer.status_code == 400
        assert answer.json()["error"]["field"] == "payload"
    assert chat.slack.calls == []
