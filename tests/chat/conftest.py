"""The chat tests' world: a real ``klink serve`` app on a loopback port (uvicorn in a thread),
the FAKE Slack (``klink.testing.fake_slack``) where Slack's Web API would be, and tokens."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from klink.server import create_app
from klink.service.runtime import Runtime
from klink.testing.fake_slack import FakeSlack
from tests.conftest import free_port, make_settings

HUBOT_SECRET = "hubot-shared-secret"


@dataclass
class Chat:
    url: str
    runtime: Runtime
    admin: str
    slack: FakeSlack

    def http(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token or self.admin}"}
        )

    def token(self, name: str, role: str, envs: list[str] | None = None) -> str:
        with self.http() as http:
            answer = http.post("/auth/tokens", json={"name": name, "role": role, "envs": envs})
            assert answer.status_code == 201, answer.text
            return str(answer.json()["token"])

    def idle(self, timeout: float = 60.0) -> None:
        runner = self.runtime.extras["chat.app"].state.chat_runner
        assert runner.idle(timeout), "chat commands still running"

    def link(self, user: str, token: str) -> None:
        """``/klink link`` as ``user``, then ``klink chat link CODE`` with ``token``."""
        answer = self.slack.slash(f"{self.url}/chat/slack/commands", "link", user=user)
        assert answer.status_code == 200, answer.text
        text = answer.json()["text"]
        code = text.split("klink chat link ", 1)[1].split("`", 1)[0]
        with self.http(token) as http:
            linked = http.post("/chat/link", json={"code": code})
            assert linked.status_code == 200, linked.text


def serve(runtime: Runtime, port: int) -> Callable[[], None]:
    import uvicorn

    app = create_app(runtime)
    runtime.extras["chat.app"] = app.state.services["chat"]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=15)

    return stop


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def chat_settings(home: Path, port: int, slack: FakeSlack, **extra: str) -> Any:
    return make_settings(
        home,
        port,
        KLINK_SLACK_SIGNING_SECRET=slack.signing_secret,
        KLINK_SLACK_BOT_TOKEN=slack.token,
        KLINK_SLACK_API_URL=slack.api_url,
        KLINK_HUBOT_SECRET=HUBOT_SECRET,
        **extra,
    )


@pytest.fixture
def chat(home: Path, slack: FakeSlack) -> Iterator[Chat]:
    port = free_port()
    runtime = Runtime.open(chat_settings(home, port, slack))
    stop = serve(runtime, port)
    admin = runtime.settings.admin_token_path.read_text().strip()
    try:
        yield Chat(f"http://127.0.0.1:{port}", runtime, admin, slack)
    finally:
        stop()
        runtime.close()
