"""End to end: a signed slash command to a completed local deployment (real processes, real
HAProxy, the engine inside the real server), its Slack message updated in place, the
deployment's notification updated in place, and an Undo button that works. Slack's Web API is
the FAKE of ``klink.testing.fake_slack``; everything else is real."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from klink.config.client import ConfigClient
from klink.deploy.context import Services
from klink.deploy.services import probe
from klink.metadata.client import MetadataClient
from klink.notify import dispatcher_for
from klink.providers import base
from klink.providers.local import control
from klink.providers.local.provider import LocalProvider
from klink.service.runtime import Runtime, utcnow
from klink.testing.fake_slack import FakeSlack
from tests.chat.conftest import Chat, chat_settings, serve
from tests.conftest import free_port
from tests.deploy.conftest import World
from tests.local.conftest import get_json, make_image

pytestmark = pytest.mark.slow


@pytest.fixture
def platform(home: Path, slack: FakeSlack) -> Iterator[tuple[Chat, LocalProvider]]:
    port = free_port()
    settings = chat_settings(home, port, slack, KLINK_ENGINE="1", KLINK_ENGINE_WORKERS="1")
    runtime = Runtime.open(settings)
    provider = LocalProvider.from_environment(
        "dev", {"provider": "local"}, SimpleNamespace(home=home)
    )
    assert isinstance(provider, LocalProvider)

    def services() -> Services:
        # The production wiring (deploy/services.py) with the local provider of this test.
        return Services(
            metadata=MetadataClient(runtime.http("metadata")),
            config=ConfigClient(runtime.http("config")),
            provider_for=lambda env, meta: provider,
            notifier=dispatcher_for(runtime),
            probe=probe,
            clock=utcnow,
        )

    runtime.extras["deploy.services"] = services
    stop = serve(runtime, port)
    admin = settings.admin_token_path.read_text().strip()
    try:
        yield Chat(f"http://127.0.0.1:{port}", runtime, admin, slack), provider
    finally:
        stop()
        provider.close()
        control.stop_all(home, grace=2.0)
        runtime.close()


def finished(chat: Chat, deployment_id: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with chat.http() as http:
        while True:
            d: dict[str, Any] = http.get(f"/deploy/deployments/{deployment_id}").json()
            if d["status"] in ("completed", "failed", "cancelled", "invalid"):
                return d
            assert time.monotonic() < deadline, d
            time.sleep(0.2)


def latest(chat: Chat) -> dict[str, Any]:
    with chat.http() as http:
        found: list[dict[str, Any]] = http.get(
            "/deploy/deployments", params={"app": "hello", "env": "dev"}
        ).json()["deployments"]
    return found[0]


def test_slash_command_to_completed_deployment_then_undo_button(
    platform: tuple[Chat, LocalProvider], tmp_path: Path
) -> None:
    chat, cloud = platform
    slack = chat.slack
    port, frontend = free_port(), free_port()
    world = World(chat.runtime, chat.http(), None, None, None, chat.runtime.settings.home)  # type: ignore[arg-type]
    world.app("hello", "dev", deploymentRooms={"dev": ["#deploys"]})
    world.config(
        "hello",
        "dev",
        params={"healthCheckIntervalSeconds": 1, "targetGroups": ["hello-dev"]},
        props={"service.port": port, "healthcheck.path": "/healthcheck"},
    )
    cloud.ensure_target_group(
        base.TargetGroupSpec(
            name="hello-dev",
            port=port,
            health_check_path="/healthcheck",
            health_check_interval_seconds=1,
            healthy_threshold=2,
            unhealthy_threshold=2,
            deregistration_delay_seconds=1,
            frontend_port=frontend,
        )
    )
    url = f"http://127.0.0.1:{frontend}/healthcheck"
    v1, v2 = make_image(world.home, "1.0", tmp_path), make_image(world.home, "2.0", tmp_path)
    first = finished(chat, world.deploy(v1.id, app="hello", env="dev"))
    assert first["status"] == "completed", first["error"]
    assert get_json(url)["version"] == "1.0"

    chat.link("U123", chat.token("ci-bot", "deployer", ["dev"]))
    commands = f"{chat.url}/chat/slack/commands"
    started = time.monotonic()
    answer = slack.slash(commands, f'deploy hello dev {v2.id} -m "ship v2"', user="U123")
    assert time.monotonic() - started < 3.0  # Slack's limit
    assert answer.status_code == 200
    assert answer.json()["response_type"] == "in_channel"
    assert "ci-bot via slack:T0FAKE/U123" in answer.json()["text"]
    chat.idle(120)

    second = latest(chat)
    assert second["image"] == v2.id
    assert finished(chat, second["id"])["status"] == "completed"
    assert second["user"] == "ci-bot"  # deploy records the identity (and, once it can, its via)
    assert get_json(url)["version"] == "2.0"

    # The command's message: posted once, updated in place, finished with its buttons.
    in_c1 = [m for (channel, _), m in slack.messages.items() if channel == "C1"]
    (message,) = [m for m in in_c1 if not m.get("thread_ts")]
    (report,) = [m for m in in_c1 if m.get("thread_ts") == message["ts"]]
    assert "deploy requested by ci-bot" in report["text"]  # the whole log, in the thread
    assert "complete: deployment completed" in report["text"]
    assert message["updates"] >= 1
    assert f"deployment {second['id']} completed" in message["text"]
    actions = [b for b in message["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == [
        "klink:pause",
        "klink:resume",
        "klink:undo",
    ]
    # The deployment's own notification: one message in its room, updated through its life.
    notified = [c for c in slack.called("chat.postMessage") if c.body["channel"] == "#deploys"]
    assert len(notified) == 2  # v1's deployment and v2's: one message each
    room = slack.messages[("#deploys", _ts(slack, "#deploys", 1))]
    assert "completed" in room["text"]
    assert room["updates"] >= 1

    # Someone unlinked presses Undo: refused, to them only, nothing runs.
    refused = slack.press(f"{chat.url}/chat/slack/actions", message, "klink:undo", user="UX")
    assert refused.status_code == 200
    private = slack.wait_for(lambda: slack.called("response:a1"))
    assert private[0].body["response_type"] == "ephemeral"
    assert "only read" in private[0].body["text"]
    assert latest(chat)["id"] == second["id"]

    # ci-bot presses Undo: v2 is undone, v1 serves again, the same message says so.
    pressed = slack.press(f"{chat.url}/chat/slack/actions", message, "klink:undo", user="U123")
    assert pressed.status_code == 200
    chat.idle(120)
    undone = finished(chat, latest(chat)["id"])
    assert undone["id"] == second["id"]  # the undo of a completed deployment is that deployment
    assert undone["undo"] is True
    assert undone["status"] == "completed"
    assert get_json(url)["version"] == "1.0"
    updated = slack.messages[(message["channel"], message["ts"])]
    assert updated["updates"] > message["updates"]
    assert "undo hello dev" in updated["text"]
    with httpx.Client() as http:
        assert http.get(url).json()["version"] == "1.0"
    # The undo is the same deployment: its notification is the same message, updated again.
    assert (
        len([c for c in slack.called("chat.postMessage") if c.body["channel"] == "#deploys"]) == 2
    )
    room_after = slack.messages[("#deploys", _ts(slack, "#deploys", 1))]
    assert room_after["text"].startswith("Undo of hello/dev")
    assert room_after["updates"] > room["updates"]


def _ts(slack: FakeSlack, channel: str, index: int) -> str:
    return sorted(ts for (c, ts) in slack.messages if c == channel)[index]
