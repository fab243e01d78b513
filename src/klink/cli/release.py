"""Release commands: promote, approve, reject, override; clients of the deploy API.

``klink promote APP FROM TO -m`` deploys to TO the image running in FROM now (``klink promote
APP TO`` uses TO's ``promotesFrom``) and follows it like ``klink deploy``; ``klink approve ID
-m``, ``klink reject ID -m`` and ``klink override ID -m`` (admin: through a closed window or a
freeze) record a person's decision and print what the deployment waits for next.
"""

from __future__ import annotations

from typing import Any

from klink.cli.deploy import api, started
from klink.cli.output import emit_json, say

TYPE_CHECKING = False
if TYPE_CHECKING:
    from klink.cli.parse import Args


def _promote(args: Args) -> int:
    source, target = (None, args.first) if args.second is None else (args.first, args.second)
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


def _decide(args: Args) -> int:
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
