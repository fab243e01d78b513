"""``klink infra plan|apply|drift|history``: infrastructure from ``infrastructure.yaml``.

``apply`` shows the plan, asks (unless ``--yes``), then applies exactly the plan it showed: it
sends the plan's commit and ``plan_hash``, and the server refuses (409) if the plan changed in
between. Exit codes: 0 done (or nothing to do), 1 failed or refused, 2 bad usage.
"""

from __future__ import annotations

import sys

from klink.cli.api import Api, CliError, client_for
from klink.cli.output import emit_json, err, errors, interactive, say, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from klink.cli.parse import Args


def api(args: Args) -> Api:
    return client_for(args, timeout=900.0)


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


def _plan(args: Args) -> int:
    plan = api(args).call("GET", f"/infra/{args.app}/{args.env}/plan", params={"at": args.at})
    if args.json:
        emit_json(plan)
    else:
        show_plan(plan)
    return 0


def _confirm(question: str) -> bool:
    if not interactive():
        raise CliError("not a terminal: pass --yes to apply without asking", code=2)
    errors().write(f"{question} [y/N] ")
    errors().flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _apply(args: Args) -> int:
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


def _drift(args: Args) -> int:
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


def _history(args: Args) -> int:
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
