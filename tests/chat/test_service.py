"""The chat service's shape: mounted in the combined server and able to run alone; settings."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from klink.errors import SettingsError
from klink.server import create_app
from klink.service.runtime import Runtime
from klink.settings import SLACK_API_URL, Settings


def test_mounted_and_alone(runtime: Runtime, admin_token: str) -> None:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with TestClient(create_app(runtime), headers=headers) as client:
        assert client.get("/chat/ping").text == "pong"  # "/" is the web UI's overview
        health = client.get("/chat/healthcheck").json()
        assert (health["name"], health["success"]) == ("chat", True)
        paths = client.get("/chat/openapi.json").json()["paths"]
        for path in ("/slack/commands", "/slack/events", "/slack/actions", "/hubot", "/link"):
            assert path in paths
    with TestClient(create_app(runtime, ["chat"]), headers=headers) as alone:
        assert alone.get("/chat/ping").text == "pong"
        assert alone.get("/deploy/ping").status_code == 404


def test_chat_settings() -> None:
    settings = Settings.from_env({"KLINK_HOME": "/tmp/x"})
    assert settings.slack_api_url == SLACK_API_URL
    assert (settings.slack_signing_secret, settings.slack_bot_token, settings.hubot_secret) == (
        "",
        "",
        "",
    )
    custom = Settings.from_env(
        {"KLINK_HOME": "/tmp/x", "KLINK_SLACK_API_URL": "http://127.0.0.1:9/api"}
    )
    assert custom.slack_api_url == "http://127.0.0.1:9/api/"
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"KLINK_HOME": "/tmp/x", "KLINK_SLACK_API_URL": "slack.com/api"})
    assert info.value.field == "KLINK_SLACK_API_URL"
    assert settings.service_url("chat") == "http://127.0.0.1:8642/chat"
