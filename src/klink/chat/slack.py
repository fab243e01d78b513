"""Slack's front door: slash commands, app mentions (Events API) and buttons (interactivity).

Every request is verified as Slack specifies before anything else (``slack_sdk``'s
``SignatureVerifier``: HMAC-SHA256 of ``v0:{timestamp}:{raw body}`` with the signing secret,
timestamps more than five minutes away refused): a bad or missing signature is a 401 and
nothing runs. Without a signing secret these endpoints do not exist (404). Slack wants an
answer within 3 s: what needs no work (help, a link code, a refusal) is the answer itself, to
that user only; a command that runs is acknowledged at once and runs in a thread, its message
updated in place as its output grows (``chat.update`` with the bot token, else the
``response_url``), its full output in the message's thread when long, and for deployment
verbs Pause, Resume and Undo buttons at the end. An event Slack retries (same ``event_id``,
``X-Slack-Retry-Num``) is not run twice.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from klink.chat import commands, links, signing
from klink.chat.commands import Job, Outcome
from klink.errors import KlinkError
from klink.metadata.client import MetadataClient
from klink.names import is_valid_name
from klink.notify import slack_blocks
from klink.service.auth import runtime_of
from klink.service.openapi import errors
from klink.service.runtime import Runtime

log = logging.getLogger(__name__)

PROG = "/klink"
BUTTON_VERBS = frozenset(verb for verb, _label, _style in slack_blocks.BUTTONS)
LONG_OUTPUT_LINES = 12
# Signed by the sender (no token): 401 when the signature or its time is wrong, 404 when
# this front door has no secret set here, 413 for a body over the limit.
SIGNED = errors(401, 404, 413)
router = APIRouter(tags=["slack"])


def web_client(runtime: Runtime) -> WebClient | None:
    settings = runtime.settings
    if not settings.slack_bot_token:
        return None
    return WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10)


def _production(runtime: Runtime, env: str) -> bool:
    try:
        record = MetadataClient(runtime.http("metadata")).environment(env)
    except KlinkError:
        return False
    return slack_blocks.is_production(record.get("metadata"))


class SlackReply:
    """One Slack message for one command: posted (or taken over: a button's message), updated
    in place, finished with the result and buttons; long output also goes to its thread."""

    def __init__(
        self,
        runtime: Runtime,
        header: str,
        *,
        channel: str | None,
        response_url: str | None = None,
        ts: str | None = None,
        thread_ts: str | None = None,
        summary: bool = False,
    ) -> None:
        self.runtime = runtime
        self.web = web_client(runtime)
        self.header = header
        self.channel = channel
        self.response_url = response_url
        self.ts = ts
        self.thread_ts = thread_ts
        # A slash command's own answer ("running…") is replaced by the result at the end.
        self.summary = summary

    def _show(self, text: str, blocks: list[dict[str, Any]]) -> None:
        if self.web is not None and self.channel:
            if self.ts is None:
                answer = self.web.chat_postMessage(
                    channel=self.channel, text=text, blocks=blocks, thread_ts=self.thread_ts
                )
                self.ts = str(answer["ts"])
            else:
                self.web.chat_update(channel=self.channel, ts=self.ts, text=text, blocks=blocks)
        elif self.response_url:
            WebhookClient(self.response_url, timeout=10).send(
                text=text, blocks=blocks, replace_original=True, response_type="in_channel"
            )

    @property
    def live(self) -> bool:
        """Whether updates go out as the output grows: through the Web API only (a
        ``response_url`` takes five messages at most, kept for the result)."""
        return self.web is not None and bool(self.channel)

    def start(self) -> None:
        if self.ts is not None or not self.live:  # a button's message, or response_url only
            return
        self._show(f"{self.header}\n_running…_", slack_blocks.message(f"{self.header}\n_running…_"))

    def progress(self, text: str) -> None:
        if not self.live:
            return
        shown = f"{self.header}\n_running…_\n```{_tail(text)}```"
        self._show(shown, slack_blocks.message(shown))

    def finish(self, outcome: Outcome) -> None:
        status = "done" if outcome.ok else "*failed*"
        shown = f"{self.header}: {status}\n```{_tail(outcome.text)}```"
        target = outcome.target
        if target is not None:
            app, env = target
            blocks = slack_blocks.message(
                shown, app, env, production=_production(self.runtime, env)
            )
        else:
            blocks = slack_blocks.message(shown)
        self._show(shown, blocks)
        long = outcome.text.count("\n") >= LONG_OUTPUT_LINES
        if long and self.web is not None and self.channel and self.ts:
            self.web.chat_postMessage(
                channel=self.channel, thread_ts=self.ts, text=f"```{outcome.text}```"
            )
        if self.summary and self.response_url and self.live:
            # The slash command's own "running…" says how it ended; the output is in the
            # bot's message (and its thread), not twice in the channel.
            WebhookClient(self.response_url, timeout=10).send(
                text=f"{self.header}: {status}", replace_original=True, response_type="in_channel"
            )


def _tail(text: str, lines: int = 10) -> str:
    kept = text.strip().splitlines()[-lines:]
    return "\n".join(kept) or " "


def _header(job: Job) -> str:
    return f"`{PROG} {job.line}` by {job.caller.principal.actor}"


def _chat_user(team: str | None, user: str) -> str:
    return f"slack:{team}/{user}" if team else f"slack:{user}"


async def _verified(request: Request) -> bytes:
    return await signing.verified_body(
        request,
        runtime_of(request).settings.slack_signing_secret,
        "KLINK_SLACK_SIGNING_SECRET",
        "x-slack-request-timestamp",
        "x-slack-signature",
    )


def _form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}


def _runner(request: Request) -> commands.Runner:
    runner: commands.Runner = request.app.state.chat_runner
    return runner


@router.post("/slack/commands", responses=SIGNED)
async def slash_command(request: Request) -> Response:
    body = await _verified(request)
    form = _form(body)
    runtime = runtime_of(request)
    user = _chat_user(form.get("team_id"), form.get("user_id", ""))
    decided = await run_in_threadpool(commands.decide, runtime, user, form.get("text", ""), PROG)
    if isinstance(decided, Outcome):
        return JSONResponse({"response_type": "ephemeral", "text": decided.text})
    reply = SlackReply(
        runtime,
        _header(decided),
        channel=form.get("channel_id"),
        response_url=form.get("response_url"),
        summary=True,
    )
    _runner(request).start(decided, reply)
    return JSONResponse({"response_type": "in_channel", "text": f"{_header(decided)}: running…"})


@router.post("/slack/events", responses=SIGNED)
async def events(request: Request) -> Response:
    body = await _verified(request)
    try:
        payload = json.loads(body)
    except ValueError:
        return JSONResponse(
            {"error": {"code": "invalid_json", "message": "the body is not JSON"}}, 400
        )
    if payload.get("type") == "url_verification":
        return JSONResponse({"challenge": payload.get("challenge", "")})
    event = payload.get("event") or {}
    if payload.get("type") != "event_callback" or event.get("type") != "app_mention":
        return Response(status_code=200)
    runtime = runtime_of(request)
    event_id = str(payload.get("event_id") or f"{event.get('channel')}:{event.get('ts')}")
    first = await run_in_threadpool(links.first_time, runtime.engine, event_id, runtime.clock())
    if not first:
        log.info(
            "Slack event %s seen before (retry %s): not run again",
            event_id,
            request.headers.get("x-slack-retry-num", "-"),
        )
        return Response(status_code=200)
    # After the answer: Slack wants it within 3 s, and the mention's reply is a Slack call.
    return Response(
        status_code=200,
        background=BackgroundTask(_mention, runtime, _runner(request), payload, event),
    )


def _mention(
    runtime: Runtime, runner: commands.Runner, payload: dict[str, Any], event: dict[str, Any]
) -> None:
    words = str(event.get("text", "")).split()
    text = " ".join(w for w in words if not (w.startswith("<@") and w.endswith(">")))
    user = _chat_user(payload.get("team_id"), str(event.get("user", "")))
    decided = commands.decide(runtime, user, text, "@klink")
    web = web_client(runtime)
    channel = str(event.get("channel", ""))
    if web is None:
        log.warning("an app mention needs KLINK_SLACK_BOT_TOKEN to answer")
        return
    thread = str(event.get("thread_ts") or event.get("ts") or "") or None
    if isinstance(decided, Outcome):
        web.chat_postEphemeral(channel=channel, user=str(event.get("user", "")), text=decided.text)
        return
    reply = SlackReply(runtime, _header(decided), channel=channel, thread_ts=thread)
    runner.start(decided, reply)


@router.post("/slack/actions", responses=SIGNED)
async def actions(request: Request) -> Response:
    body = await _verified(request)
    try:
        payload = json.loads(_form(body).get("payload", ""))
        action = payload["actions"][0]
        verb = str(action["action_id"]).removeprefix("klink:")
        value = json.loads(action.get("value") or "{}")
        app, env = value["app"], value["env"]
        if verb not in BUTTON_VERBS or not (is_valid_name(app) and is_valid_name(env)):
            raise ValueError(verb)
    except (ValueError, KeyError, IndexError, TypeError):
        return JSONResponse(
            {"error": {"code": "invalid", "message": "not a Klink button", "field": "payload"}},
            400,
        )
    runtime = runtime_of(request)
    user_id = str((payload.get("user") or {}).get("id", ""))
    team = (payload.get("team") or {}).get("id") or (payload.get("user") or {}).get("team_id")
    user = _chat_user(team, user_id)
    line = f"{verb} {app} {env}"
    if verb in ("undo", "rollback", "redeploy"):
        line += f" -m 'from Slack, by {user}'"
    decided = await run_in_threadpool(commands.decide, runtime, user, line, PROG)
    stale = await run_in_threadpool(_stale, runtime, verb, app, env, value.get("deployment"))
    if stale and not isinstance(decided, Outcome):
        decided = Outcome(stale, ok=False, private=True)
    response_url = payload.get("response_url")
    channel = (payload.get("channel") or {}).get("id")
    ts = (payload.get("container") or {}).get("message_ts") or (payload.get("message") or {}).get(
        "ts"
    )
    if isinstance(decided, Outcome):
        if not response_url:
            return Response(status_code=200)
        return Response(
            status_code=200, background=BackgroundTask(_private, str(response_url), decided.text)
        )
    reply = SlackReply(runtime, _header(decided), channel=channel, response_url=response_url, ts=ts)
    _runner(request).start(decided, reply)
    return Response(status_code=200)


def _stale(runtime: Runtime, verb: str, app: str, env: str, deployment: Any) -> str | None:
    """Why an Undo button may no longer press (its deployment is not app+env's latest):
    ``undo`` acts on the latest, which must be the one the message is about."""
    if verb != "undo" or not deployment:
        return None
    from klink.deploy.client import DeployClient

    try:
        found = DeployClient(runtime.http("deploy")).deployments(app=app, env=env, limit=1)
    except KlinkError as exc:
        return f"cannot check that deployment {deployment} is still the latest: {exc.message}"
    if found and str(found[0]["id"]) == str(deployment):
        return None
    newer = f"; the latest is {found[0]['id']}" if found else ""
    return (
        f"this message is about deployment {deployment}, which is no longer the latest of "
        f"{app}/{env}{newer}: `{PROG} undo {app} {env} -m WHY` undoes the latest"
    )


def _private(response_url: str, text: str) -> None:
    WebhookClient(response_url, timeout=10).send(
        text=text, response_type="ephemeral", replace_original=False
    )
