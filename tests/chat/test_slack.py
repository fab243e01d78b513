"""Slack's front door against a real server: signatures, linking, rights, retries, help."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from klink.service.runtime import Runtime
from klink.testing.fake_slack import Call, FakeSlack
from tests.chat.conftest import Chat, serve
from tests.conftest import free_port, make_settings

COMMANDS = "/chat/slack/commands"


def deployments(chat: Chat) -> list[object]:
    with chat.http() as http:
        found: list[object] = http.get("/deploy/deployments").json()["deployments"]
        return found


def test_bad_missing_or_stale_signatures_are_401_and_run_nothing(chat: Chat) -> None:
    slack = chat.slack
    body = b"text=deploy+search+prod+img-1+-m+x&user_id=U1&team_id=T0FAKE&channel_id=C1"
    kind = {"Content-Type": "application/x-www-form-urlencoded"}
    url = chat.url + COMMANDS
    cases = [
        kind,  # no signature at all
        {**kind, **slack.sign(body), "X-Slack-Signature": "v0=" + "0" * 64},
        {**kind, **slack.sign(body, timestamp=int(time.time()) - 6 * 60)},  # stale
        {**kind, **slack.sign(body), "X-Slack-Request-Timestamp": "soon"},
        {**kind, **slack.sign(body + b"&extra=1")},  # signed another body
    ]
    for headers in cases:
        answer = httpx.post(url, content=body, headers=headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert answer.json()["error"]["code"] == "unauthorized"
    for path in ("/chat/slack/events", "/chat/slack/actions"):
        assert httpx.post(chat.url + path, content=b"{}", headers=kind).status_code == 401
    assert slack.calls == []
    assert deployments(chat) == []
    # A signature that verifies is accepted: the checks are not refusing everything.
    answer = slack.send(url, body, kind["Content-Type"])
    assert answer.status_code == 200
    assert "only read" in answer.json()["text"]


def test_without_a_signing_secret_slack_is_404(home: Path, slack: FakeSlack) -> None:
    port = free_port()
    runtime = Runtime.open(make_settings(home, port))
    stop = serve(runtime, port)
    try:
        for path in ("commands", "events", "actions"):
            answer = slack.send(f"http://127.0.0.1:{port}/chat/slack/{path}", b"x=1", "text/plain")
            assert answer.status_code == 404
        assert httpx.post(f"http://127.0.0.1:{port}/chat/hubot", content=b"{}").status_code == 404
    finally:
        stop()
        runtime.close()


def test_url_verification_and_settings_keep_secrets_out_of_repr(chat: Chat) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "abc123"}).encode()
    answer = chat.slack.send(chat.url + "/chat/slack/events", body, "application/json")
    assert answer.json() == {"challenge": "abc123"}
    shown = repr(chat.runtime.settings)
    assert chat.slack.signing_secret not in shown
    assert chat.slack.token not in shown
    assert "hubot-shared-secret" not in shown


def test_unlinked_user_reads_only_and_help_says_so(chat: Chat) -> None:
    url = chat.url + COMMANDS
    answer = chat.slack.slash(url, "help", user="UNEW").json()
    assert answer["response_type"] == "ephemeral"
    assert "not linked" in answer["text"]
    assert "`/klink deployments" in answer["text"]
    assert "`/klink deploy " not in answer["text"]
    refused = chat.slack.slash(url, "deploy search prod img-1 -m why", user="UNEW").json()
    assert refused["response_type"] == "ephemeral"
    assert "only read" in refused["text"]
    unknown = chat.slack.slash(url, "frobnicate now", user="UNEW").json()
    assert "unknown command `frobnicate`" in unknown["text"]
    assert "You may run" in unknown["text"]
    usage = chat.slack.slash(url, "deploy search", user="UNEW").json()
    assert "the following arguments are required: env, -m/--message" in usage["text"]
    local_only = chat.slack.slash(url, "serve", user="UNEW").json()
    assert "not available from chat" in local_only["text"]
    assert chat.slack.called("chat.postMessage") == []
    assert deployments(chat) == []


def test_a_read_runs_and_its_message_is_updated_in_place(chat: Chat) -> None:
    with chat.http() as http:
        assert http.put("/metadata/applications/search", json={"metadata": {"contact": "a@b.c"}})
    # --server and --token have no place in chat: it decides where and as whom.
    for line in ("info search --server http://127.0.0.1:9", "info search --token klk_x"):
        refused = chat.slack.slash(chat.url + COMMANDS, line, user="UREAD").json()
        assert refused["response_type"] == "ephemeral"
        assert "mean nothing in chat" in refused["text"]
    answer = chat.slack.slash(chat.url + COMMANDS, "info search", user="UREAD", channel="C9")
    assert answer.status_code == 200
    assert answer.json()["response_type"] == "in_channel"
    chat.idle()
    posted = chat.slack.called("chat.postMessage")
    assert posted[0].body["channel"] == "C9"
    assert posted[0].token == chat.slack.token
    (message,) = [m for (channel, _), m in chat.slack.messages.items() if channel == "C9"]
    assert message["updates"] >= 1  # "running…", then the result in the same message
    assert "a@b.c" in message["text"]
    assert "by unlinked via slack:T0FAKE/UREAD" in message["text"]
    (summary,) = chat.slack.called("response:r1")  # the command's own message: how it ended
    assert summary.body["text"] == "`/klink info search` by unlinked via slack:T0FAKE/UREAD: done"
    assert summary.body["replace_original"] is True


def test_link_then_act_with_exactly_that_identitys_rights(chat: Chat) -> None:
    poke = chat.token("pat", "deployer", ["poke"])
    chat.link("UPAT", poke)
    url = chat.url + COMMANDS
    text = chat.slack.slash(url, "help", user="UPAT").json()["text"]
    assert "You act as *pat* (deployer on poke)" in text
    assert "`/klink deploy APP ENV [IMAGE] -m MESSAGE" in text
    refused = chat.slack.slash(url, "deploy search prod img-1 -m why", user="UPAT").json()
    assert refused["response_type"] == "ephemeral"
    assert "pat may not change environment prod" in refused["text"]
    # Another chat user is not pat.
    other = chat.slack.slash(url, "deploy search poke img-1 -m why", user="UOTHER").json()
    assert "only read" in other["text"]
    # The services themselves see pat (not the internal token): pat cannot lock Klink.
    with chat.http() as http:
        internal = {"Authorization": f"Bearer {chat.runtime.internal_token}"}
        acting = {**internal, "X-Klink-Act-As": "pat", "X-Klink-Via": "slack:T0FAKE/UPAT"}
        who = http.get("/auth/whoami", headers=acting).json()
        assert who == {
            "name": "pat",
            "role": "deployer",
            "envs": ["poke"],
            "via": "slack:T0FAKE/UPAT",
            "actor": "pat via slack:T0FAKE/UPAT",
        }
        locked = http.post("/deploy/lock", json={"message": "x"}, headers=acting)
        assert locked.status_code == 403
        # Only the internal token may act as someone.
        as_admin = http.get("/auth/whoami", headers={"X-Klink-Act-As": "pat", "X-Klink-Via": "x"})
        assert as_admin.status_code == 403
        # A deleted token ends what its links may do.
        assert http.delete("/auth/tokens/pat").status_code == 204
        assert http.get("/auth/whoami", headers=acting).status_code == 401
    text = chat.slack.slash(url, "help", user="UPAT").json()["text"]
    assert "not linked" in text
    assert "no longer works" in text
    assert chat.slack.slash(url, "unlink", user="UPAT").json()["text"].startswith("you are no")
    assert "no longer works" not in chat.slack.slash(url, "help", user="UPAT").json()["text"]


def test_link_codes_work_once_and_need_a_person(chat: Chat) -> None:
    answer = chat.slack.slash(chat.url + COMMANDS, "link", user="UONE").json()
    assert answer["response_type"] == "ephemeral"
    code = answer["text"].split("klink chat link ", 1)[1].split("`", 1)[0]
    reader = chat.token("rita", "reader")
    with chat.http(chat.runtime.internal_token) as http:
        assert http.post("/chat/link", json={"code": code}).status_code == 403
    with chat.http(reader) as http:
        first = http.post("/chat/link", json={"code": code})
        assert first.json()["chatUser"] == "slack:T0FAKE/UONE"
        again = http.post("/chat/link", json={"code": code})
        assert again.status_code == 400
        assert again.json()["error"]["field"] == "code"


def test_the_cli_links_with_its_own_token(chat: Chat, capsys: pytest.CaptureFixture[str]) -> None:
    from klink.cli.main import main

    answer = chat.slack.slash(chat.url + COMMANDS, "link", user="UCLI").json()
    code = answer["text"].split("klink chat link ", 1)[1].split("`", 1)[0]
    token = chat.token("cory", "deployer")
    assert main(["chat", "link", code, "--server", chat.url, "--token", token]) == 0
    assert "slack:T0FAKE/UCLI now acts as cory (deployer)" in capsys.readouterr().out
    assert main(["chat", "link", code, "--server", chat.url, "--token", token]) == 1
    assert "expired" in capsys.readouterr().err


def test_a_retried_event_runs_once(chat: Chat) -> None:
    url = chat.url + "/chat/slack/events"
    event = {
        "type": "app_mention",
        "user": "U7",
        "text": "<@UFAKEBOT> envs",
        "channel": "C7",
        "ts": "111.222",
    }
    assert chat.slack.event(url, event, "Ev1").status_code == 200
    assert chat.slack.event(url, event, "Ev1", retry=1).status_code == 200
    assert chat.slack.event(url, event, "Ev1", retry=2).status_code == 200

    def in_c7() -> list[Call]:
        return [c for c in chat.slack.called("chat.postMessage") if c.body["channel"] == "C7"]

    chat.slack.wait_for(in_c7)
    time.sleep(1.0)
    chat.idle()
    posted = in_c7()
    assert len(posted) == 1
    assert posted[0].body["thread_ts"] == "111.222"
    assert chat.slack.event(url, {**event, "ts": "111.333"}, "Ev2").status_code == 200
    chat.slack.wait_for(lambda: len(in_c7()) == 2)


def test_without_a_bot_token_the_result_replaces_the_command_message(
    home: Path, slack: FakeSlack
) -> None:
    port = free_port()
    settings = make_settings(
        home,
        port,
        KLINK_SLACK_SIGNING_SECRET=slack.signing_secret,
        KLINK_SLACK_API_URL=slack.api_url,
    )
    runtime = Runtime.open(settings)
    stop = serve(runtime, port)
    try:
        url = f"http://127.0.0.1:{port}{COMMANDS}"
        answer = slack.slash(url, "envs", user="U5", name="only")
        assert answer.json()["response_type"] == "in_channel"
        (result,) = slack.wait_for(lambda: slack.called("response:only"))
        assert result.body["replace_original"] is True
        assert "NAME" in result.body["text"]  # the table of environments, even if empty
        time.sleep(0.5)
        assert len(slack.called("response:only")) == 1  # response_url takes five at most
        assert [c for c in slack.calls if not c.method.startswith("response:")] == []
    finally:
        stop()
        runtime.close()
