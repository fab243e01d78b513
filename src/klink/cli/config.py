"""``klink config clone|log|show|diff|validate``: the configuration commands (HTTP and git only).

``clone`` runs plain ``git clone`` with the token in an ``Authorization`` header passed through
git's environment (never in the remote URL, never on a command line), then sets the clone's
credential helper to ``klink config credential`` so later pulls and pushes find the token the
same way every klink command does (``KLINK_TOKEN``, ``~/.config/klink/config.toml``, …).
"""

from __future__ import annotations

import base64
import os
import shlex
import subprocess
import sys
from pathlib import Path

from klink.cli.api import Api, CliError, client_for, resolve
from klink.cli.output import emit_json, err, out, say, table
from klink.cli.verbs import FILE_NAMES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from klink.cli.parse import Args


def _api(args: Args) -> Api:
    return client_for(args)


def _repo(app: str, env: str) -> str:
    return f"/config/repos/{app}/{env}"


def _git_env(token: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if token:
        basic = base64.b64encode(f"klink:{token}".encode()).decode()
        count = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
        env.update(
            {
                "GIT_CONFIG_COUNT": str(count + 1),
                f"GIT_CONFIG_KEY_{count}": "http.extraHeader",
                f"GIT_CONFIG_VALUE_{count}": f"Authorization: Basic {basic}",
            }
        )
    return env


def _git(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    try:
        done = subprocess.run(
            ["git", *argv], env=env, cwd=cwd, capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise CliError(f"cannot run git: {exc}") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise CliError(f"git {argv[0]} failed: {lines[-1] if lines else done.returncode}")


def _clone(args: Args) -> int:
    client = _api(args)
    repos = client.call("GET", f"/config/repos/{args.app}")["repos"]
    if args.env is not None:
        repos = [r for r in repos if r["env"] == args.env]
        if not repos:
            raise CliError(f"no config repository {args.app}-{args.env}")
    if not repos:
        raise CliError(f"application {args.app!r} has no config repositories")
    if args.dir and len(repos) > 1:
        raise CliError("--dir needs one environment", code=2)
    helper = "!" + shlex.join([sys.executable, "-m", "klink.cli.main", "config", "credential"])
    cloned = []
    for repo in repos:
        target = Path(args.dir or repo["name"])
        if target.exists():
            raise CliError(f"{target} exists")
        _git(
            ["clone", "--quiet", "--", repo["cloneUrl"], str(target)], _git_env(client.target.token)
        )
        url = repo["cloneUrl"]
        _git(["config", f"credential.{url}.helper", helper], cwd=target)
        _git(["config", f"credential.{url}.username", "klink"], cwd=target)
        cloned.append({**repo, "path": str(target)})
    if args.json:
        emit_json(cloned)
    else:
        for repo in cloned:
            say(f"cloned {repo['name']} into {repo['path']}")
    return 0


def _credential(args: Args) -> int:
    """git's credential helper protocol: answer ``get`` with the klink token."""
    sys.stdin.read()
    if args.operation == "get":
        token = resolve(args.server, args.token).token
        if token:
            sys.stdout.write(f"username=klink\npassword={token}\n")
    return 0


def _log(args: Args) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.before:
        params["before"] = args.before
    body = _api(args).call("GET", f"{_repo(args.app, args.env)}/commits", params=params)
    if args.json:
        emit_json(body)
        return 0
    table(
        ["commit", "date", "author", "message"],
        [
            [
                c["hash"][:12],
                c["date"],
                c["author"],
                c["message"].splitlines()[0] if c["message"] else "",
            ]
            for c in body["commits"]
        ],
    )
    if body.get("next"):
        say(f"(more: --before {body['next']})")
    return 0


def _show(args: Args) -> int:
    path = f"{_repo(args.app, args.env)}/files/{args.file}"
    body = _api(args).call("GET", path, params={"at": args.at})
    if args.json:
        emit_json(body)
    else:
        from klink.cli import jsonlite

        say(jsonlite.dumps(body["data"], indent=2, sort_keys=True))
    return 0


def _diff(args: Args) -> int:
    params = {"from": args.from_ref, "to": args.to_ref}
    body = _api(args).call("GET", f"{_repo(args.app, args.env)}/diff", params=params)
    if args.json:
        emit_json(body)
    elif not body["files"]:
        say(f"no changes between {body['from'][:12]} and {body['to'][:12]}")
    else:
        out().write("".join(change["diff"] for change in body["files"]))
    return 0


def _validate(args: Args) -> int:
    path = Path(args.file)
    kind = args.kind or path.name
    if kind not in FILE_NAMES:
        raise CliError(f"{path.name}: name the kind with --as ({', '.join(FILE_NAMES)})", code=2)
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    body = _api(args).call(
        "POST",
        "/config/validate",
        json={"file": kind, "content": content, "provider": args.provider},
    )
    if args.json:
        emit_json(body)
    elif body["valid"]:
        say(f"{path}: valid {kind} for {args.provider}")
    else:
        problems = [
            f"{p['field']}: {p['message']}" if p["field"] else p["message"]
            for p in body["problems"]
        ]
        err(f"klink: {path} is not a valid {kind}: {'; '.join(problems)}")
    return 0 if body["valid"] else 1
