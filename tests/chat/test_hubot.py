"""Hubot: the real ``hubot`` package from npm running ``integrations/hubot`` against a real
``klink serve`` (a process of its own), through ``/chat/hubot``; and that endpoint's checks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from klink.testing.fake_slack import signature
from tests.chat.conftest import HUBOT_SECRET, Chat
from tests.conftest import free_port

HUBOT = Path(__file__).resolve().parents[2] / "integrations" / "hubot"


def signed(body: bytes, secret: str = HUBOT_SECRET, stamp: int | None = None) -> dict[str, str]:
    ts, digest = signature(secret, body, stamp)
    return {"X-Klink-Request-Timestamp": ts, "X-Klink-Signature": digest}


def test_endpoint_verifies_and_streams(chat: Chat) -> None:
    url = f"{chat.url}/chat/hubot"
    body = json.dumps({"user": {"id": "U1"}, "room": "ops", "text": "envs"}).encode()
    for headers in (
        {},
        signed(body, secret="wrong"),
        signed(body, stamp=int(time.time()) - 600),
        signed(body + b" "),
    ):
        assert httpx.post(url, content=body, headers=headers).status_code == 401
    bad = b'{"room": "ops"}'
    answer = httpx.post(url, content=bad, headers=signed(bad))
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "user"
    answer = httpx.post(url, content=body, headers=signed(body), timeout=30)
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert lines[0]["type"] == "status"
    assert "envs` by unlinked via hubot:U1" in lines[0]["text"]
    assert lines[-1] == {"type": "done", "ok": True, "text": "done", "private": False}
    assert any("NAME" in line.get("text", "") for line in lines[1:-1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    home = tmp_path / "home"
    env = {
        **os.environ,
        "KLINK_HOME": str(home),
        "KLINK_LISTEN": f"127.0.0.1:{port}",
        "KLINK_ENGINE": "0",
        "KLINK_SCHEDULES": "0",
        "KLINK_HUBOT_SECRET": HUBOT_SECRET,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "klink.cli.main", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/chat/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "klink serve did not start"
            time.sleep(0.1)
        yield url, env
    finally:
        server.terminate()
        _, err = server.communicate(timeout=15)
        assert HUBOT_SECRET.encode() not in err  # never in the log


def test_real_hubot_against_real_klink_serve(served: tuple[str, dict[str, str]]) -> None:
    url, env = served
    assert shutil.which("node"), "node is missing: scripts/lib/setup.sh installs it"
    assert (HUBOT / "node_modules" / "hubot").is_dir(), (
        "integrations/hubot/node_modules is missing: scripts/lib/setup.sh runs npm install"
    )
    admin = (Path(env["KLINK_HOME"]) / "admin-token").read_text().strip()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}) as http:
        assert (
            http.put(
                "/metadata/environments/dev", json={"metadata": {"provider": "local"}}
            ).status_code
            < 300
        )
        made = http.post("/auth/tokens", json={"name": "hank", "role": "deployer"})
        token = made.json()["token"]
    result = subprocess.run(
        ["node", "--test", "--test-timeout=60000", "test/"],
        cwd=HUBOT,
        env={**env, "KLINK_URL": url, "KLINK_TEST_TOKEN": token, "HUBOT_LOG_LEVEL": "error"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# pass 2" in result.stdout
    assert "# fail 0" in result.stdout
