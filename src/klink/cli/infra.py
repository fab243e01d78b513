"""``klink infra plan|apply|drift|history``: infrastructure from ``infrastructure.yaml``.

``apply`` shows the plan, asks (unless ``--yes``), then applies exactly the plan it showed: it
sends the plan's commit and ``plan_hash``, and the server refuses (409) if the plan changed in
between. Exit codes: 0 done (or nothing to do), 1 failed or refused, 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from klink.cli.api import Api, CliError, resolve
from klink.cli.output import emit_json, err, say, table


def api(args: argparse.Namespace) -> Api:
    return Api(resolve(args.server, args.token), timeout=900.0)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    infra = sub.add_parser("infra", help="plan and apply load balancers, security groups, IAM")
    verbs = infra.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = verbs.add_parser("plan", parents=[common], help="show what apply would change")
    p.add_argument("app")
    p.add_argument("env")
    p.add_argument("--at", default="HEAD", help="config commit or ref (default HEAD)")
    p.set_defaults(handler=_plan)

    p = verbs.add_parser("apply", parents=[common], help="show the plan, ask, apply it")
    p.add_argument("app")
    p.add_argument("env")
    p.add_argument("--at", default="HEAD", help="config commit or ref (default HEAD)")
    p.add_argument("--yes", action="store_true", help="do not ask")
    p.set_defaults(handler=_apply)

    p = verbs.add_parser("drift", parents=[common], help="latest drift checks")
    p.add_argument("env", nargs="?", help="only this environment")
    p.add_argument("--now", action="store_true", help="run the checks now (admin)")
    p.set_defaults(handler=_drift)

    p = verbs.add_parser("history", parents=[common], help="applies of APP in ENV, newest first")
    p.add_argument("app")
    p.add_argument("env")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(handler=_history)


def show_plan(plan: dict[str, Any]) -> None:
    say(f"{plan['app']}/{plan['env']} at {str(plan['commit'])[:12]}")
    if plan["empty"]:
        say("  nothing to do: live state matches the definition")
    for action in plan["actions"]:
        say(f"  {_mark(action['op'])} {action['line']}")
    for line in plan.get("kept", []):
        say(f"  = kept: {line}")
    for line in plan.get("not_applicable", []):
        say(f"  ~ {line}")
    if not plan["empty"]:
        say(f"plan {plan['plan_hash'][:12]}: {len(plan['actions'])} action(s)")


def _mark(op: str) -> str:
    return {"create": "+", "update": "*", "delete": "-"}.get(op, "?")


def _plan(args: argparse.Namespace) -> int:
    plan = api(args).call("GET", f"/infra/{args.app}/{args.env}/plan", params={"at": args.at})
    if args.json:
        emit_json(plan)
    else:
        show_plan(plan)
    return 0


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise CliError("not a terminal: pass --yes to apply without asking", code=2)
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _apply(args: argparse.Namespace) -> int:
    client = api(args)
    plan = client.call("GET", f"/infra/{args.app}/{args.env}/plan", params={"at": args.at})
    if not args.json:
        show_plan(plan)
    if plan["empty"]:
        if args.json:
            emit_json({"status": "unchanged", "plan": plan})
        return 0
    if not args.yes and not _confirm(f"apply these {len(plan['actions'])} action(s)?"):
        err("klink: not applied")
        return 1
    body = {"at": plan["commit"], "plan_hash": plan["plan_hash"]}
    entry = client.call("POST", f"/infra/{args.app}/{args.env}/apply", json=body)
    if args.json:
        emit_json(entry)
    else:
        result = entry.get("result") or {}
        for line in result.get("done", []):
            say(f"  done: {line}")
        failed = result.get("failed")
        if failed:
            say(f"  FAILED: {failed['line']}: {failed['error']}")
        for line in result.get("not_done", []):
            say(f"  not done: {line}")
        say(f"apply {entry['id']}: {entry['status']}")
    return 0 if entry["status"] == "succeeded" else 1


def _drift(args: argparse.Namespace) -> int:
    client = api(args)
    params = {"env": args.env} if args.env else None
    if args.now:
        reports = client.call("POST", "/infra/drift/run", params=params)["reports"]
    else:
        reports = client.call("GET", "/infra/drift", params=params)["reports"]
    if args.json:
        emit_json(reports)
        return 0
    rows = []
    for r in reports:
        state = "error" if r["error"] else "drift" if r["drifted"] else "ok"
        detail = r["error"] or "; ".join(a["line"] for a in r["actions"]) or "-"
        rows.append([r["env"], r["app"], state, r["checked_at"], detail])
    table(["env", "app", "state", "checked", "detail"], rows)
    return 0


def _history(args: argparse.Namespace) -> int:
    entries = api(args).call(
        "GET", f"/infra/{args.app}/{args.env}/history", params={"limit": args.limit}
    )["history"]
    if args.json:
        emit_json(entries)
        return 0
    table(
        ["id", "started", "actor", "commit", "status", "actions"],
        [
            [
                e["id"],
                e["started_at"],
                e["actor"],
                (e["commit"] or "")[:12],
                e["status"],
                len(e["actions"]),
            ]
            for e in entries
        ],
    )
    return 0
