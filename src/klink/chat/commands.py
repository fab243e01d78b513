"""Run a chat message as a Klink command, as the chat user's linked identity.

A message is split like a shell line and parsed with the CLI's own verb table and parser
(``klink.cli.verbs``, ``klink.cli.parse``): one table of verbs, not two. Before anything runs,
``decide`` answers what needs no work (help, a link code, a usage error, a missing right) with
a message for that user only. What runs is the CLI's own handler for the verb, in a thread of
its own, with its output captured (``klink.cli.output.capture``) and its HTTP calls made with
Klink's internal token plus ``X-Klink-Act-As``/``X-Klink-Via``, so the services see exactly the
linked identity's role and environments, recording ``identity via chat-user``. An unlinked user
acts as a reader. Front doors (Slack, Hubot) differ only in how they show ``Reply`` updates.
"""

from __future__ import annotations

import io
import logging
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from klink.auth import tokens
from klink.auth.tokens import UNLINKED, Principal
from klink.chat import links
from klink.cli.parse import Args, HelpWanted, UsageError, resolve, usage
from klink.cli.verbs import VERBS, Verb
from klink.errors import Unauthorized
from klink.service.auth import ACT_AS_HEADER, VIA_HEADER
from klink.service.runtime import INTERNAL_TOKEN_NAME, Runtime

log = logging.getLogger(__name__)

# Verbs that act on app+env's deployment: their message gets Pause, Resume and Undo buttons.
DEPLOYMENT_VERBS = frozenset(
    {"deploy", "undo", "rollback", "redeploy", "pause", "resume", "cancel", "retry"}
)
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


@dataclass(frozen=True)
class Caller:
    """Who wrote the message (``slack:T1/U123``) and who Klink takes them for."""

    chat_user: str
    principal: Principal
    stale_link: str | None = None  # linked to an identity whose token is gone

    @property
    def linked(self) -> bool:
        return self.principal.name != UNLINKED

    def headers(self) -> dict[str, str]:
        headers = {VIA_HEADER: self.chat_user}
        if self.linked:
            headers[ACT_AS_HEADER] = self.principal.name
        return headers


def caller(runtime: Runtime, chat_user: str) -> Caller:
    internal = Principal(name=INTERNAL_TOKEN_NAME, role="admin")
    identity = links.identity_of(runtime.engine, chat_user)
    try:
        return Caller(chat_user, tokens.act_as(runtime.engine, internal, identity, chat_user))
    except Unauthorized:
        reader = tokens.act_as(runtime.engine, internal, None, chat_user)
        return Caller(chat_user, reader, stale_link=identity)


@dataclass
class Outcome:
    """What to show at the end. ``private``: to that user only (nothing ran)."""

    text: str
    ok: bool = True
    private: bool = False
    verb: Verb | None = None
    args: Args | None = None
    output: str = ""  # all the command wrote, as written (``text`` is it trimmed, for showing)

    @property
    def target(self) -> tuple[str, str] | None:
        """(app, env) of a deployment verb, for its buttons."""
        if self.verb is None or self.args is None or self.verb.name not in DEPLOYMENT_VERBS:
            return None
        return str(self.args.app), str(self.args.env)


@dataclass
class Job:
    """A command that will run: its verb, arguments and the line as written."""

    verb: Verb
    args: Args
    line: str
    caller: Caller


class Reply(Protocol):
    def start(self) -> None:
        """Show that the command runs (before its first output)."""

    def progress(self, text: str) -> None:
        """The output so far (all of it), while the command runs."""

    def finish(self, outcome: Outcome) -> None: ...


def words_of(text: str) -> list[str]:
    """A message as shell words (Slack turns quotes into curly ones and escapes <, >, &)."""
    text = text.translate(_QUOTES).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def refusal(principal: Principal, verb: Verb, args: Args) -> str | None:
    """Why ``principal`` may not run ``verb`` (None: it may). The services check again."""
    need = verb.chat
    if need is None:
        return f"`{verb.name}` runs on Klink's own machine; it is not available from chat"
    if need == "reader":
        return None
    if principal.name == UNLINKED:
        return (
            f"you may only read until you link yourself to a Klink identity: `link` shows a code "
            f"to confirm with `klink chat link CODE` (`{verb.name}` needs {need})"
        )
    if not principal.has(need):
        return f"{principal.name} has role {principal.role}; `{verb.name}` needs {need}"
    env = args.__dict__.get("env")
    if need == "deployer" and env and not principal.can_deploy(str(env)):
        return f"{principal.name} may not change environment {env}"
    return None


def may_run(principal: Principal, verb: Verb) -> bool:
    if verb.chat is None or verb.hidden:
        return False
    if verb.chat == "reader":
        return True
    return principal.name != UNLINKED and principal.has(verb.chat)


def help_text(who: Caller, prog: str) -> str:
    p = who.principal
    if who.linked:
        scope = f" on {', '.join(p.envs)}" if p.envs else ""
        lines = [f"You act as *{p.name}* ({p.role}{scope}). You may run:"]
    else:
        lines = ["You are not linked to a Klink identity, so you may only read. You may run:"]
    for verb in VERBS:
        if may_run(p, verb):
            shown = usage(verb, prog).removeprefix("usage: ")
            shown = shown.replace(" [--server SERVER] [--token TOKEN] [--json]", "")
            lines.append(f"• `{shown}`: {verb.help}")
    lines.append(f"• `{prog} link`: link yourself to your Klink token (`klink chat link CODE`)")
    if who.linked:
        lines.append(f"• `{prog} unlink`: stop acting as {p.name}")
    if who.stale_link:
        lines.append(f"(your link to {who.stale_link} no longer works: its token is gone)")
    return "\n".join(lines)


def decide(runtime: Runtime, chat_user: str, text: str, prog: str) -> Outcome | Job:
    """What a message means: an answer now (help, link code, refusal) or a Job to run."""
    who = caller(runtime, chat_user)
    words = words_of(text)
    if words and words[0] == "klink":
        words = words[1:]
    if not words or words[0] in ("help", "-h", "--help"):
        return Outcome(help_text(who, prog), private=True)
    if words == ["link"]:
        code = links.issue_code(runtime.engine, chat_user, runtime.clock())
        return Outcome(
            f"To act as yourself, run in a terminal, with your own Klink token:\n"
            f"`klink chat link {code}`\n(the code works once, for ten minutes)",
            private=True,
        )
    if words == ["unlink"]:
        gone = links.unlink(runtime.engine, chat_user)
        text = "you are no longer linked: you may only read" if gone else "you were not linked"
        return Outcome(text, private=True)
    try:
        verb, args = resolve(words, prog)
    except HelpWanted as wanted:
        return Outcome(f"```{wanted.text}```", private=True)
    except UsageError as exc:
        if "COMMAND: invalid choice" in exc.message:
            return Outcome(f"unknown command `{words[0]}`\n{help_text(who, prog)}", False, True)
        return Outcome(f"{exc.message}\n`{exc.usage.removeprefix('usage: ')}`", False, True)
    if args.__dict__.get("server") or args.__dict__.get("token"):
        return Outcome(
            "--server and --token mean nothing in chat: you act as your linked identity",
            ok=False,
            private=True,
        )
    reason = refusal(who.principal, verb, args)
    if reason:
        return Outcome(reason, ok=False, private=True)
    return Job(verb, args, shlex.join(words), who)


class _Sink(io.StringIO):
    """The command's output; ``on_change`` hears the whole text at most every ``interval`` s."""

    def __init__(self, on_change: Callable[[str], None], interval: float) -> None:
        super().__init__()
        self.on_change = on_change
        self.interval = interval
        self.last = time.monotonic()

    def write(self, text: str) -> int:
        written = super().write(text)
        if time.monotonic() - self.last >= self.interval:
            self.last = time.monotonic()
            try:
                self.on_change(self.getvalue())
            except Exception:  # a failed update never stops the command
                log.warning("chat progress update failed", exc_info=True)
        return written


def run(runtime: Runtime, job: Job, reply: Reply, interval: float = 2.0) -> Outcome:
    """Run ``job``'s CLI handler here (call it in a thread of its own) and finish ``reply``."""
    from klink.cli.api import CliError
    from klink.cli.main import handler_of
    from klink.cli.output import capture

    try:
        reply.start()
    except Exception:  # a failed update never stops the command
        log.warning("chat reply failed", exc_info=True)
    sink = _Sink(reply.progress, interval)
    capture(sink)
    args = job.args
    args.override(
        server=runtime.settings.public_url,
        token=runtime.internal_token,
        headers=job.caller.headers(),
        json=False,
    )
    ok = True
    try:
        ok = handler_of(job.verb.handler)(args) == 0
    except CliError as exc:
        sink.write(exc.message + "\n")
        ok = False
    except Exception:
        log.exception("chat command %s failed", job.verb.name)
        sink.write("internal error; see Klink's log\n")
        ok = False
    output = sink.getvalue()
    outcome = Outcome(output.strip() or "done", ok=ok, verb=job.verb, args=args, output=output)
    try:
        reply.finish(outcome)
    except Exception:
        log.warning("chat reply failed", exc_info=True)
    return outcome


@dataclass
class Runner:
    """Runs jobs in threads of their own; tests wait on ``idle``."""

    runtime: Runtime
    interval: float = 2.0
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self, job: Job, reply: Reply) -> threading.Thread:
        thread = threading.Thread(
            target=run,
            args=(self.runtime, job, reply, self.interval),
            daemon=True,
            name=f"chat-{job.verb.name}",
        )
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()
        return thread

    def idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)
