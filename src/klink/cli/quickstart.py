"""``klink quickstart``: Klink's main job, end to end, on the embedded default.

On SQLite, the local provider and HAProxy: start the platform if it is not running; create the
environment ``dev`` and the example application ``hello`` (from ``examples/hello/``, copied into
a git repository of its own under ``KLINK_HOME/quickstart/``) with its config (a target group
behind an HAProxy frontend, through ``infrastructure.yaml``, pushed with plain git); build, bake
and deploy it; change it, build, bake and deploy again under load through the load balancer;
undo that deployment under load; deploy a canary of a version that answers 5 % of requests
with 500, which the canary's analysis fails and undoes by itself; print the figures and where
things are. Every step goes
through the HTTP APIs, as a user's commands would. Re-running it works: what exists is reused.
"""

from __future__ import annotations

import sys

from klink.cli.api import Api, resolve
from klink.cli.output import emit_json, say

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from klink.cli.parse import Args

APP, ENV = "hello", "dev"


def _quickstart(args: Args) -> int:
    from klink.cli import quickstart_steps as steps

    def progress(line: str) -> None:
        # With --json, stdout carries the one JSON object only; progress goes to stderr.
        if args.json:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        else:
            say(line)

    platform = steps.Platform(resolve(args.server, args.token), progress)
    started = platform.ensure_running()
    try:
        client = Api(platform.target(args.token))
        setup = steps.setup(client, platform, progress)
        result = steps.run(client, setup, progress, quiet=args.json)
        result.update(api=platform.server, balancer=setup.balancer, home=platform.home)
    finally:
        if started and not args.keep_running:
            progress("stopping the platform this run started (klink stop)")
            platform.stop()
    if args.json:
        emit_json(result)
    else:
        _summary(result, started and not args.keep_running)
    return 0 if result["ok"] else 1


def _summary(result: dict[str, Any], stopped: bool) -> None:
    say("")
    say("Klink quickstart: done" if result["ok"] else "Klink quickstart: something failed")
    for deploy in result["deploys"]:
        head = f"  deployed {APP} {deploy['version']} as {deploy['image']} ({deploy['deployment']})"
        if not deploy["requests"]:
            say(f"{head}: no load during this first deploy")
            continue
        say(
            f"{head}: {deploy['requests']} requests under load, {deploy['failed']} failed, "
            f"versions seen: {', '.join(deploy['versions_seen']) or '-'}"
        )
    undo = result["undo"]
    say(
        f"  undid deployment {undo['undid']} (undo {undo['deployment']}): {undo['requests']} "
        f"requests under load, {undo['failed']} failed, versions seen: "
        f"{', '.join(undo['versions_seen']) or '-'}"
    )
    canary = result["canary"]
    expected = canary["weight"] / 100 * canary["error_rate"]
    say(
        f"  canary of a version answering {canary['error_rate']:.0%} with 500 at "
        f"{canary['weight']}% of traffic ({canary['deployment']}): {canary['verdict']} after "
        f"{canary['intervals_judged']} interval(s), "
        + ("undone by itself" if canary["undone"] else "NOT undone")
        + f"; {canary['failed']} of {canary['requests']} requests failed "
        f"(at most about {expected:.2%} of those sent while it had traffic)"
    )
    say("")
    say(f"  API:           {result['api']}")
    say(f"  {APP} (HAProxy): {result['balancer']}/")
    say(f"  data folder:   {result['home']}")
    if stopped:
        say("  the platform was stopped; `scripts/quickstart --keep-running` leaves it up")
    else:
        say("  stop it all:   klink stop")
    say("")
    say("Next, try:")
    for line in (
        f"klink deployments {APP} {ENV}",
        f"klink canary {result['canary']['deployment']}",
        f"klink boxes {APP} {ENV}",
        f"klink config clone {APP} {ENV}   # change application-properties.json, git push",
        f"klink redeploy {APP} {ENV} -m 'new config'",
        f"klink rollback {APP} {ENV} -m 'back again'",
    ):
        say(f"  {line}")
