"""Release commands: promote, approve, reject, override; clients of the deploy API.

``klink promote APP FROM TO -m`` deploys to TO the image running in FROM now (``klink promote
APP TO`` uses TO's ``promotesFrom``) and follows it like ``klink deploy``; ``klink approve ID
-m``, ``klink reject ID -m`` and ``klink override ID -m`` (admin: through a closed window or a
freeze) record a person's decision and print what the deployment waits for next.
"""

from __future__ import annotations

import argparse
from typing import Any

from klink.cli.api import CliError
from klink.cli.deploy import api, started
from klink.cli.output import emit_json, say


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "promote",
        parents=[common],
        help="deploy to an environment the image running in another",
        description="klink promote APP FROM TO -m WHY, or klink promote APP TO -m WHY "
        "(TO's promotesFrom names FROM)",
    )
    p.add_argument("app")
    p.add_argument("envs", nargs="+", metavar="ENV", help="FROM TO, or TO alone")
    p.add_argument("-m", "--message", required=True, help="why (recorded and notified)")
    p.add_argument("--commit", help="TO's config commit or ref (default: HEAD)")
    p.add_argument("--no-wait", action="store_true", help="return once it is accepted")
    p.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    p.add_argument(
        "--no-window-wait", action="store_true", help="refuse instead of waiting for a window"
    )
    p.set_defaults(handler=_promote)

    for verb, text in (
        ("approve", "approve a deployment that waits for approvals"),
        ("reject", "reject a deployment that waits for approvals (it ends cancelled)"),
        ("override", "let a deployment through its closed window or freeze (admin)"),
    ):
        p = sub.add_parser(verb, parents=[common], help=text)
        p.add_argument("id", help="the deployment")
        p.add_argument("-m", "--message", required=True, help="why (recorded)")
        p.set_defaults(handler=_decide, verb=verb)


def _promote(args: argparse.Namespace) -> int:
    if len(args.envs) > 2:
        raise CliError("promote takes FROM TO, or TO alone", 2)
    source, target = (None, args.envs[0]) if len(args.envs) == 1 else args.envs
    body: dict[str, Any] = {
        "message": args.message,
        "dryRun": args.dry_run,
        "windowWait": not args.no_window_wait,
    }
    if source:
        body["from"] = source
    if args.commit:
        body["commit"] = args.commit
    client = api(args)
    result = client.call("POST", f"/deploy/{args.app}/{target}/promote", json=body)
    lineage = result.get("promotedFrom") or {}
    if lineage and not args.json and not args.dry_run:
        say(
            f"promoting {lineage['image']} from {args.app}/{lineage['env']} "
            f"(deployment {lineage.get('deployment') or '?'}) to {target}"
        )
    return started(client, args, result)


def _decide(args: argparse.Namespace) -> int:
    result = api(args).call(
        "POST", f"/deploy/deployments/{args.id}/{args.verb}", json={"message": args.message}
    )
    if args.json:
        emit_json(result)
        return 0
    done = {"approve": "approved", "reject": "rejected", "override": "overridden"}[args.verb]
    waiting = result.get("waitingFor")
    say(
        f"deployment {result['id']} {done}: {result['status']}"
        + (f"; {waiting}" if waiting else "")
    )
    return 0
