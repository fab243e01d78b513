"""Deployment commands: deploy, watch, undo, rollback, redeploy, pause, resume, cancel, retry,
resize, deployments, boxes, lock, unlock (``klink worker`` is in ``cli/server.py``).

``watch`` follows a deployment's log incrementally, with a line whenever what it waits for
changes (``waitingFor``; every traffic shift is a line too, with the weights it set); exit 0
when it completes, 1 otherwise; Ctrl-C stops watching and leaves the deployment running.
``deployments`` shows each one's lineage (promoted from) and what a deployment that is not
moving waits for. ``boxes`` shows each group's weight and health through the balancer.
"""

from __future__ import annotations

import time

from klink.cli.api import Api, CliError, client_for
from klink.cli.output import emit_json, err, interactive, say, table

FINAL = ("completed", "failed", "invalid", "cancelled")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from klink.cli.parse import Args


def api(args: Args) -> Api:
    return client_for(args)


def _newest_image(client: Api, app: str, env: str, yes: bool) -> str:
    images = client.call("GET", f"/deploy/{app}/{env}/images")["images"]
    usable = [i for i in images if i["state"] == "available" and not i["embargoed"]]
    if not usable:
        raise CliError(f"{app} has no image that may go to {env}; bake one first")
    newest = usable[0]
    if not yes:
        if not interactive():
            raise CliError(f"newest image is {newest['id']}; pass it, or --yes to confirm", 2)
        answer = input(f"Deploy {newest['id']} ({newest.get('version')}) to {app}/{env}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise CliError("not deployed")
    return str(newest["id"])


def _deploy(args: Args) -> int:
    client = api(args)
    image = args.image or _newest_image(client, args.app, args.env, args.yes)
    body: dict[str, Any] = {"image": image, "message": args.message, "dryRun": args.dry_run}
    if args.no_window_wait:
        body["windowWait"] = False
    if args.commit:
        body["commit"] = args.commit
    result = client.call("POST", f"/deploy/{args.app}/{args.env}", json=body)
    return started(client, args, result)


def _again(args: Args) -> int:
    client = api(args)
    body = {"message": args.message, "dryRun": args.dry_run}
    result = client.call("POST", f"/deploy/{args.app}/{args.env}/{args.verb}", json=body)
    return started(client, args, result)


def started(client: Api, args: Args, result: dict[str, Any]) -> int:
    if result.get("dryRun"):
        _print_plan(args, result)
        return 0
    deployment_id = str(result["id"])
    if args.no_wait:
        if args.json:
            emit_json({"id": deployment_id, "status": result.get("status")})
        else:
            say(f"deployment {deployment_id} started; follow it with `klink watch {deployment_id}`")
        return 0
    return follow(client, deployment_id, args.json)


def _print_plan(args: Args, result: dict[str, Any]) -> None:
    if args.json:
        emit_json(result)
        return
    groups = result["groups"]
    say(f"dry run: {result['app']}/{result['env']} image {result['image']}")
    for verb in ("create", "enable", "disable", "remove", "keep", "baseline"):
        if groups.get(verb):
            say(f"  {verb:8} {groups[verb]}")
    for number, step in enumerate(result["plan"], start=1):
        args_text = " ".join(f"{k}={v}" for k, v in step.get("args", {}).items())
        say(f"  {number:3}. [{step['phase']}] {step['name']} {args_text}".rstrip())


def _control(args: Args) -> int:
    message = getattr(args, "message", "")
    body = {"message": message} if message else None
    result = api(args).call("POST", f"/deploy/{args.app}/{args.env}/{args.verb}", json=body)
    if args.json:
        emit_json(result)
    else:
        say(f"deployment {result['id']}: {result['status']}")
    return 0


def follow(client: Api, deployment_id: str, as_json: bool, poll: float = 0.5) -> int:
    since, waiting = 0, None
    try:
        while True:
            page = client.call(
                "GET", f"/deploy/deployments/{deployment_id}/logs", params={"since": since}
            )
            total = page["actions"]
            for line in page["logs"]:
                if not as_json:
                    seq = line.get("seq")
                    progress = "" if seq is None else f"[{seq + 1}/{total}]"
                    say(f"{line['at'][11:19]} {progress:>9} {line['message']}")
                    if line["message"].startswith(JUDGED):
                        _show_judgement(client, deployment_id, line["message"])
            since = page["next"]
            status = page["status"]
            if page.get("waitingFor") != waiting:
                waiting = page.get("waitingFor")
                if waiting and not as_json:
                    say(f"{'':>18} waiting for: {waiting}")
            if status in FINAL or status == "paused":
                break
            time.sleep(poll)
    except KeyboardInterrupt:
        err(
            f"klink: stopped watching; deployment {deployment_id} goes on "
            f"(klink watch {deployment_id})"
        )
        return 130
    summary = client.call("GET", f"/deploy/deployments/{deployment_id}")
    if as_json:
        emit_json(
            {k: v for k, v in summary.items() if k not in ("plan", "previousState", "newState")}
        )
    elif status == "completed":
        say(f"deployment {deployment_id} completed")
    elif status == "paused":
        why = f" ({summary['waitingFor']})" if summary.get("waitingFor") else ""
        err(
            f"klink: deployment {deployment_id} is paused at {summary['current']}{why}; "
            f"`klink resume {summary['app']} {summary['env']}` goes on"
        )
    else:
        err(
            f"klink: deployment {deployment_id} {status}: {summary.get('error') or ''}".rstrip(": ")
        )
    return 0 if status == "completed" else 1


JUDGED = "analyse_canary: canary interval "


def _show_judgement(client: Api, deployment_id: str, message: str) -> None:
    """The table of the interval a log line reports (``klink watch`` of a canary)."""
    from klink.cli import canary

    number = message.removeprefix(JUDGED).split("/", 1)[0]
    found = canary.fetch(client, deployment_id)
    for report in found["reports"]:
        if str(report["interval"]) == number:
            canary.show_interval(report, found["intervals"])


def _watch(args: Args) -> int:
    return follow(api(args), args.id, args.json)


def _deployments(args: Args) -> int:
    params = {"app": args.app, "env": args.env, "status": args.status, "limit": args.limit}
    found = api(args).call(
        "GET", "/deploy/deployments", params={k: v for k, v in params.items() if v}
    )["deployments"]
    if args.json:
        emit_json(found)
        return 0
    table(
        ["id", "app", "env", "image", "status", "from", "user", "created", "waiting for / message"],
        [
            [
                d["id"],
                d["app"],
                d["env"],
                d["image"],
                d["status"] + (" (undo)" if d["undo"] else ""),
                _lineage(d.get("promotedFrom")),
                d["user"],
                (d["createdAt"] or "")[:19],
                d.get("waitingFor") or d["message"],
            ]
            for d in found
        ],
    )
    return 0


def _lineage(source: dict[str, Any] | None) -> str:
    """Where a promoted deployment came from: ``poke (3f2a9c1b7d4e)``."""
    if not source:
        return "-"
    return f"{source['env']} ({source.get('deployment') or '?'})"


def _boxes(args: Args) -> int:
    result = api(args).call("GET", f"/deploy/{args.app}/{args.env}/boxes")
    if args.json:
        emit_json(result)
        return 0
    say(f"group: {result['group'] or '-'}")
    table(
        ["id", "address", "image", "state", "health"],
        [[b["id"], b["address"], b["image"], b["state"], b["health"]] for b in result["boxes"]],
    )
    if result.get("groups"):
        say("traffic:")
        table(
            ["target group", "group", "weight", "healthy"],
            [
                [
                    g["targetGroup"],
                    g["name"] + (f" ({g['role']})" if g.get("role") else ""),
                    str(g["weight"]),
                    f"{g['healthy']}/{g['registered']}",
                ]
                for g in result["groups"]
            ],
        )
    return 0


def _resize(args: Args) -> int:
    body = {"min": args.min, "max": args.max, "desired": args.desired}
    result = api(args).call("POST", f"/deploy/{args.app}/{args.env}/resize", json=body)
    if args.json:
        emit_json(result)
    else:
        say(f"{result['group']}: min {args.min} max {args.max} desired {args.desired}")
    return 0


def _lock(args: Args) -> int:
    result = api(args).call("POST", "/deploy/lock", json={"message": args.message})
    if args.json:
        emit_json(result)
    else:
        say(f"Klink is locked: {args.message}")
    return 0


def _unlock(args: Args) -> int:
    if (args.app is None) != (args.env is None):
        raise CliError("unlock takes both APP and ENV, or neither", 2)
    client = api(args)
    if args.app:
        result = client.call("POST", f"/deploy/{args.app}/{args.env}/unlock")
        message = f"{args.app}/{args.env} unlocked (deployment {result['id']}: {result['status']})"
    else:
        result = client.call("DELETE", "/deploy/lock")
        message = "Klink is open for deployments"
    if args.json:
        emit_json(result)
    else:
        say(message)
    return 0
