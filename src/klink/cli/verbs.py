"""THE table of Klink's verbs: one definition for the CLI's parser, its help and chat.

Every command is a ``Verb``: its words (``deploy``, ``config log``), the handler that runs it
(``module:function``, imported only when that verb runs), one line of help, its arguments, and
who may run it from a chat room (``chat``: ``reader``, ``deployer`` or ``admin``; ``None`` for
commands that run things on this machine and so exist in the CLI only). ``klink.cli.parse``
turns a command line (the CLI's argv, or a chat message split like a shell) into the handler's
arguments with this table, ``klink --help`` lists it, and the chat service parses, checks rights
and lists what a person may run with it. There is no second list to keep in step.

Import cost is part of the design: this module is plain data built by three small functions
(``klink.cli.verbspec``), with no other imports (``klink --help`` reads it and must start about
as fast as Python itself).
"""

from __future__ import annotations

from klink.cli.verbspec import Arg, Verb, flag, opt, pos

__all__ = ["GROUPS", "VERBS", "Arg", "Verb", "find", "group"]

DEPLOY = "klink.cli.deploy:"
META = "klink.cli.meta:"
BUILD = "klink.cli.build:"
CONFIG = "klink.cli.config:"
INFRA = "klink.cli.infra:"
FILE_NAMES = ("application-properties.json", "deployment-params.json", "launch-data.json")
APP, ENV = pos("app"), pos("env")
WAITING = (
    flag("--no-wait", help="return once it is accepted"),
    flag("--dry-run", help="print the plan; change nothing"),
)
PAUSE_WHY = (opt("-m", "--message", default="", help="why (shown as waitingFor)"),)
MESSAGE = opt("-m", "--message", required=True, help="why (recorded and notified)")
SETS = opt(
    "--set",
    append=True,
    default=(),
    metavar="KEY=VALUE",
    help="more metadata (VALUE parsed as JSON, else a string); repeatable",
)
AGAIN = (
    ("undo", "undo the failed or paused deployment, or the last completed one"),
    ("rollback", "deploy the previous image and config again"),
    ("redeploy", "deploy the last image with the newest config"),
)
CONTROLS = (
    ("pause", "pause the deployment in progress after its running action"),
    ("resume", "resume a paused deployment"),
    ("cancel", "cancel the deployment in progress"),
    ("retry", "re-run the failed action of the deployment in progress"),
)

# Groups of two-word verbs: the top-level help lists the group once.
GROUPS = {
    "config": "configuration repositories: clone, log, show, diff, validate",
    "infra": "plan and apply load balancers, security groups, IAM",
    "prop": "get, set or delete one metadata property",
    "token": "manage API tokens",
    "chat": "link your chat user to your token: chat link CODE",
}

VERBS: tuple[Verb, ...] = (
    Verb(
        "quickstart",
        "klink.cli.quickstart:_quickstart",
        "run Klink's main job on this machine: build, bake, deploy, redeploy, undo",
        flag(
            "--keep-running",
            help="leave the platform (server, local cloud, hello) running at the end",
        ),
    ),
    Verb(
        "serve",
        "klink.cli.server:_serve",
        "run every Klink service in this process (KLINK_LISTEN, default 127.0.0.1:8642)",
        opt("--service", dest="services", append=True, help="run only this service (repeatable)"),
        common=False,
    ),
    Verb("help", "klink.cli.main:_help", "what you may run, and how", chat="reader", common=False),
    Verb("apps", META + "_apps", "list applications", chat="reader"),
    Verb("info", META + "_info", "show an application and its metadata", APP, chat="reader"),
    Verb(
        "create-app",
        META + "_create_app",
        "create an application",
        APP,
        opt("--contact", required=True, help="e-mail of who to call (required to deploy)"),
        SETS,
    ),
    Verb("envs", META + "_envs", "list environments", chat="reader"),
    Verb(
        "create-env",
        META + "_create_env",
        "create an environment",
        ENV,
        opt("--provider", required=True, choices=("local", "aws")),
        opt("--region", help="aws: region"),
        opt("--account-id", help="aws: 12-digit account id"),
        opt("--role-arn", help="aws: role to assume"),
        opt("--endpoint-url", help="aws: API endpoint (tests point it at moto)"),
        flag("--create-config-repo", help="create a config repository for every new app"),
        SETS,
    ),
    *(
        Verb(
            f"prop {verb}",
            META + "_prop",
            f"{verb} a metadata property",
            pos("name", "application (or environment with --env)", metavar="APP"),
            pos("key"),
            *((pos("value", "parsed as JSON, else taken as a string"),) if verb == "set" else ()),
            flag("--env", dest="is_env", help="NAME is an environment, not an application"),
            fixed={"verb": verb},
        )
        for verb in ("get", "set", "delete")
    ),
    Verb(
        "token create",
        META + "_token_create",
        "create a token (printed once)",
        opt("--name", required=True),
        opt("--role", required=True, choices=("reader", "deployer", "admin")),
        opt(
            "--env",
            dest="envs",
            append=True,
            help="deployer only: limit to this environment (repeatable)",
        ),
    ),
    Verb("token list", META + "_token_list", "list tokens"),
    Verb("token delete", META + "_token_delete", "delete a token", pos("name")),
    Verb(
        "audit",
        "klink.cli.audit:_audit",
        "show the audit log: who changed what, when (admin)",
        opt("--actor", help="only this token's changes"),
        opt("--action", help='only this action, e.g. "git push" or "POST /deploy/{app}/{env}"'),
        opt("--target", help="only this path and below it, e.g. /metadata/applications/search"),
        opt("--since", help="ISO 8601 time (UTC unless it says) or an age: 30m, 12h, 7d"),
        opt("--limit", type=int, default=50, help="entries per page (1-1000)"),
        opt("--before", type=int, help="the page after the one that printed this id"),
    ),
    Verb(
        "chat link",
        "klink.cli.chatlink:_link",
        "link the chat user who was shown CODE to your token",
        pos("code"),
    ),
    Verb(
        "config clone",
        CONFIG + "_clone",
        "git clone an app's config repositories",
        APP,
        pos("env", "one environment (default: every repository)", optional=True),
        opt("--dir", help="where to clone (default: ./APP-ENV)"),
    ),
    Verb(
        "config log",
        CONFIG + "_log",
        "config commits, newest first",
        APP,
        ENV,
        opt("--limit", type=int, default=20),
        opt("--before", help="only commits older than this one (paging)"),
        chat="reader",
    ),
    Verb(
        "config show",
        CONFIG + "_show",
        "a config file at a commit",
        APP,
        ENV,
        pos("file", choices=FILE_NAMES, metavar="FILE"),
        opt("--at", default="HEAD", help="hash, HEAD, HEAD~N or branch (default HEAD)"),
        chat="reader",
    ),
    Verb(
        "config diff",
        CONFIG + "_diff",
        "config changes between two commits",
        APP,
        ENV,
        pos("from_ref", metavar="FROM"),
        pos("to_ref", metavar="TO", optional=True, default="HEAD"),
        chat="reader",
    ),
    Verb(
        "config validate",
        CONFIG + "_validate",
        "check a config file before pushing",
        pos("file", "path of the file; its name says which kind it is"),
        opt("--as", dest="kind", choices=FILE_NAMES, help="the kind, if named otherwise"),
        opt("--provider", choices=("aws", "local"), default="aws"),
    ),
    Verb(
        "config credential",
        CONFIG + "_credential",
        "git credential helper",
        pos("operation", "git credential helper operation (get, store, erase)"),
        hidden=True,
    ),
    Verb(
        "local-cloud",
        "klink.cli.local:_local_cloud",
        "run the local cloud (instances + HAProxy); --detach starts it in the background",
        flag("--detach", help="start in the background"),
        opt("--port", type=int, default=0, help="listen port (default: any free)"),
        common=False,
    ),
    Verb(
        "stop",
        "klink.cli.local:_stop",
        "stop the server, local cloud, instances and HAProxy of KLINK_HOME",
        opt("--grace", type=float, default=10.0, help="seconds before SIGKILL (default 10)"),
        common=False,
    ),
    *(
        Verb(f"infra {verb}", INFRA + f"_{verb}", text, APP, ENV, *extra)
        for verb, text, extra in (
            (
                "plan",
                "show what apply would change",
                (opt("--at", default="HEAD", help="config commit or ref (default HEAD)"),),
            ),
            (
                "apply",
                "show the plan, ask, apply it",
                (
                    opt("--at", default="HEAD", help="config commit or ref (default HEAD)"),
                    flag("--yes", help="do not ask"),
                ),
            ),
            (
                "history",
                "applies of APP in ENV, newest first",
                (opt("--limit", type=int, default=20),),
            ),
        )
    ),
    Verb(
        "infra drift",
        INFRA + "_drift",
        "latest drift checks",
        pos("env", "only this environment", optional=True),
        flag("--now", help="run the checks now (admin)"),
    ),
    Verb(
        "build",
        BUILD + "_build",
        "build the next version of an app",
        APP,
        opt("--ref", help="git ref to build (default HEAD)"),
        chat="deployer",
    ),
    Verb(
        "bake",
        BUILD + "_bake",
        "bake an image of an app version",
        APP,
        pos("version"),
        opt("--target", help="local or aws:REGION (default: the only target)"),
        opt(
            "--embargo",
            default="",
            metavar="ENV,…",
            help="environments this image must never be deployed to",
        ),
        flag("--dry-run", help="show the template, bake nothing"),
        chat="deployer",
    ),
    Verb(
        "bake-base",
        BUILD + "_bake_base",
        "bake a new base image now",
        opt("--target", help="local or aws:REGION (default: the only target)"),
        opt("--provider", choices=("local", "aws"), help="the target of this provider"),
        chat="deployer",
    ),
    Verb(
        "images",
        BUILD + "_images",
        "list an app's images",
        APP,
        opt("--target"),
        chat="reader",
    ),
    Verb(
        "delete-image",
        BUILD + "_delete_image",
        "deregister an image not in use",
        APP,
        pos("image"),
        opt("--target"),
    ),
    Verb(
        "deploy",
        DEPLOY + "_deploy",
        "deploy an image (red-black)",
        APP,
        ENV,
        pos("image", "image id (default: the newest, after confirmation)", optional=True),
        MESSAGE,
        opt("--commit", help="config commit or ref (default: HEAD)"),
        flag("--yes", help="no confirmation for the newest image"),
        flag("--no-window-wait", help="refuse instead of waiting for a window"),
        *WAITING,
        chat="deployer",
    ),
    Verb(
        "promote",
        "klink.cli.release:_promote",
        "deploy to TO the image running in FROM (TO alone: its promotesFrom)",
        APP,
        pos("first", "FROM, or TO alone", metavar="FROM"),
        pos("second", "TO", optional=True, metavar="TO"),
        MESSAGE,
        opt("--commit", help="TO's config commit or ref (default: HEAD)"),
        flag("--no-window-wait", help="refuse instead of waiting for a window"),
        *WAITING,
        chat="deployer",
    ),
    *(
        Verb(
            verb,
            "klink.cli.release:_decide",
            text,
            pos("id", "the deployment"),
            opt("-m", "--message", required=True, help="why (recorded)"),
            chat="deployer",
            fixed={"verb": verb},
        )
        for verb, text in (
            ("approve", "approve a deployment that waits for approvals"),
            ("reject", "reject a deployment that waits for approvals (it ends cancelled)"),
            ("override", "let a deployment through its closed window or freeze (admin)"),
        )
    ),
    Verb("watch", DEPLOY + "_watch", "follow a deployment until it ends", pos("id"), chat="reader"),
    Verb(
        "canary",
        "klink.cli.canary:_canary",
        "a canary's judgements: each interval, each metric",
        pos("id"),
        chat="reader",
    ),
    *(
        Verb(
            verb,
            DEPLOY + "_again",
            text,
            APP,
            ENV,
            MESSAGE,
            *WAITING,
            chat="deployer",
            fixed={"verb": verb},
        )
        for verb, text in AGAIN
    ),
    *(
        Verb(
            verb,
            DEPLOY + "_control",
            text,
            APP,
            ENV,
            *(
                (opt("-m", "--message", default="", help="why (shown as waitingFor)"),)
                if verb == "pause"
                else ()
            ),
            chat="deployer",
            fixed={"verb": verb},
        )
        for verb, text in CONTROLS
    ),
    Verb(
        "resize",
        DEPLOY + "_resize",
        "resize the current group",
        APP,
        ENV,
        opt("--min", type=int, required=True),
        opt("--max", type=int, required=True),
        opt("--desired", type=int, required=True),
    ),
    Verb(
        "deployments",
        DEPLOY + "_deployments",
        "deployment history",
        pos("app", optional=True),
        pos("env", optional=True),
        opt("--status"),
        opt("--limit", type=int, default=20),
        chat="reader",
    ),
    Verb("boxes", DEPLOY + "_boxes", "instances of the current group", APP, ENV, chat="reader"),
    Verb("lock", DEPLOY + "_lock", "close Klink for deployments (admin)", MESSAGE),
    Verb(
        "unlock",
        DEPLOY + "_unlock",
        "reopen Klink, or free APP ENV's stuck slot (admin)",
        pos("app", optional=True),
        pos("env", optional=True),
    ),
    Verb("worker", "klink.cli.server:_worker", "run the deployment engine alone", common=False),
)


def find(words: list[str] | tuple[str, ...]) -> tuple[Verb | None, int]:
    """The verb that ``words`` start with, and how many words it took (two-word verbs first)."""
    if len(words) >= 2:
        two = f"{words[0]} {words[1]}"
        for verb in VERBS:
            if verb.name == two:
                return verb, 2
    if words:
        for verb in VERBS:
            if verb.name == words[0]:
                return verb, 1
    return None, 0


def group(word: str) -> list[Verb]:
    return [v for v in VERBS if len(v.words) == 2 and v.words[0] == word and not v.hidden]
