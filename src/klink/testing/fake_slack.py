"""A FAKE of Slack, for tests: Slack itself cannot run here.

Two halves of Slack, on loopback only:
- its Web API (``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``, ``auth.test``)
  and its ``response_url`` endpoints, as a real HTTP server that ``slack_sdk``'s ``WebClient``
  and ``WebhookClient`` talk to (``KLINK_SLACK_API_URL=fake.api_url``). It keeps the messages
  it was sent, so a test sees a message updated in place, and records every call;
- what Slack sends to an app: slash commands, events and button presses, signed as Slack signs
  them (``v0:{timestamp}:{body}``, HMAC-SHA256 with the signing secret), posted to Klink.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx


def signature(secret: str, body: bytes, timestamp: int | None = None) -> tuple[str, str]:
    """(timestamp, ``v0=…``) as Slack signs a request (and the Hubot script, with its secret)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    return stamp, f"v0={digest.hexdigest()}"


@dataclass
class Call:
    method: str  # "chat.postMessage", or "response:NAME" for a response_url
    body: dict[str, Any]
    token: str | None


@dataclass
class FakeSlack:
    """Start with ``with FakeSlack(token=…, signing_secret=…) as slack:``."""

    token: str = "xoxb-fake-bot-token"  # noqa: S105 - a fake's own
    signing_secret: str = "fake-signing-secret"  # noqa: S105 - a fake's own
    team: str = "T0FAKE"
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __enter__(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = self.headers.get("Content-Type", "")
                if "json" in kind:
                    body = json.loads(raw or b"{}")
                else:
                    body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ") if auth else None
                answer = fake._answer(self.path, body, token)
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str) -> str:
        return f"{self.url}/response/{name}"

    # -- the Web API ---------------------------------------------------------------------
    def _answer(self, path: str, body: dict[str, Any], token: str | None) -> dict[str, Any]:
        with self._lock:
            if path.startswith("/response/"):
                self.calls.append(Call(f"response:{path.removeprefix('/response/')}", body, token))
                return {"ok": True}
            method = path.removeprefix("/api/")
            self.calls.append(Call(method, body, token))
            if token != self.token:
                return {"ok": False, "error": "invalid_auth"}
            if method == "auth.test":
                return {"ok": True, "user_id": "UFAKEBOT", "team_id": self.team}
            if method == "chat.postMessage":
                ts = f"{int(time.time())}.{next(self._ts):06d}"
                channel = str(body["channel"])
                self.messages[(channel, ts)] = {**body, "ts": ts}
                return {"ok": True, "channel": channel, "ts": ts, "message": body}
            if method == "chat.update":
                key = (str(body["channel"]), str(body["ts"]))
                if key not in self.messages:
                    return {"ok": False, "error": "message_not_found"}
                self.messages[key] = {
                    **self.messages[key],
                    **body,
                    "updates": self.messages[key].get("updates", 0) + 1,
                }
                return {"ok": True, "channel": key[0], "ts": key[1]}
            if method == "chat.postEphemeral":
                return {"ok": True, "message_ts": f"{int(time.time())}.{next(self._ts):06d}"}
            return {"ok": False, "error": "unknown_method"}

    def called(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> Any:
        """Poll ``predicate()`` until it returns something truthy (Klink answers in threads)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"fake Slack: not seen in {timeout} s; calls: {self.calls}")
            time.sleep(0.05)

    # -- what Slack sends to the app -----------------------------------------------------
    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp, digest = signature(self.signing_secret, body, timestamp)
        return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": digest}

    def send(
        self, url: str, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        signed = {**self.sign(body), "Content-Type": content_type, **(headers or {})}
        return httpx.post(url, content=body, headers=signed, timeout=10)

    def slash(
        self, url: str, text: str, *, user: str = "U1", channel: str = "C1", name: str = "r1"
    ) -> httpx.Response:
        form = {
            "command": "/klink",
            "text": text,
            "team_id": self.team,
            "user_id": user,
            "channel_id": channel,
            "response_url": self.response_url(name),
            "trigger_id": "1.2.3",
        }
        return self.send(url, urlencode(form).encode(), "application/x-www-form-urlencoded")

    def press(
        self,
        url: str,
        message: dict[str, Any],
        action_id: str,
        *,
        user: str = "U1",
        name: str = "a1",
    ) -> httpx.Response:
        """Press the button ``action_id`` of a message this fake holds."""
        button = next(
            e
            for block in message.get("blocks", [])
            for e in block.get("elements", [])
            if e.get("action_id") == action_id
        )
        payload = {
            "type": "block_actions",
            "team": {"id": self.team},
            "user": {"id": user, "team_id": self.team},
            "channel": {"id": message["channel"]},
            "container": {"type": "message", "message_ts": message["ts"]},
            "message": {"ts": message["ts"]},
            "response_url": self.response_url(name),
            "actions": [{"action_id": action_id, "value": button["value"]}],
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.send(url, body, "application/x-www-form-urlencoded")

    def event(
        self, url: str, event: dict[str, Any], event_id: str, retry: int | None = None
    ) -> httpx.Response:
        body = json.dumps(
            {"type": "event_callback", "team_id": self.team, "event_id": event_id, "event": event}
        ).encode()
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return self.send(url, body, "application/json", headers if retry else None)
