"""Build and bake commands: ``build``, ``bake``, ``bake-base``, ``images``, ``delete-image``.

Builds and bakes stream their output live: the server answers with one JSON object per line
(``{"log"}`` lines, then ``{"result"}`` or ``{"error"}``). Log lines go to stderr with
``--json`` (stdout then holds only the result) and to stdout otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from klink.cli.api import Api, CliError, resolve
from klink.cli.output import emit_json, say, table


def api(args: argparse.Namespace) -> Api:
    return Api(resolve(args.server, args.token))


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("build", parents=[common], help="build the next version of an app")
    p.add_argument("app")
    p.add_argument("--ref", help="git ref to build (default HEAD)")
    p.set_defaults(handler=_build)

    p = sub.add_parser("bake", parents=[common], help="bake an image of an app version")
    p.add_argument("app")
    p.add_argument("version")
    p.add_argument("--target", help="local or aws:REGION (default: the only target)")
    p.add_argument(
        "--embargo",
        default="",
        metavar="ENV,…",
        help="environments this image must never be deployed to",
    )
    p.add_argument("--dry-run", action="store_true", help="show the template, bake nothing")
    p.set_defaults(handler=_bake)

    p = sub.add_parser("bake-base", parents=[common], help="bake a new base image now")
    p.add_argument("--target", help="local or aws:REGION (default: the only target)")
    p.add_argument("--provider", choices=["local", "aws"], help="the target of this provider")
    p.set_defaults(handler=_bake_base)

    p = sub.add_parser("images", parents=[common], help="list an app's images")
    p.add_argument("app")
    p.add_argument("--target")
    p.set_defaults(handler=_images)

    p = sub.add_parser("delete-image", parents=[common], help="deregister an image not in use")
    p.add_argument("app")
    p.add_argument("image")
    p.add_argument("--target")
    p.set_defaults(handler=_delete_image)


# Builds and bakes may be silent for long stretches (Packer waiting on AWS); the server's own
# time limits end them, so the CLI waits as long as the stream is open.
STREAM_TIMEOUT = 24 * 3600.0


def run_job(client: Api, path: str, body: dict[str, Any], quiet: bool) -> dict[str, Any]:
    """POST ``path`` and follow the job's output; return its result or raise CliError."""
    log = sys.stderr if quiet else sys.stdout
    try:
        with client.stream("POST", path, json=body, timeout=STREAM_TIMEOUT) as response:
            for raw in response.iter_lines():
                if not raw.strip():
                    continue
                try:
                    event = json.loads(raw)
                except ValueError:
                    raise CliError(f"unexpected output from the server: {raw[:200]}") from None
                if "log" in event:
                    log.write(f"{event['log']}\n")
                    log.flush()
                elif "error" in event:
                    # Its output already streamed above; the error is one line.
                    raise CliError(str(event["error"].get("message", "failed")))
                elif "result" in event:
                    result: dict[str, Any] = event["result"]
                    return result
    except OSError as exc:
        raise CliError(
            f"lost the Klink server at {client.target.server} ({exc}); "
            "the work may still be running there"
        ) from None
    raise CliError("the server ended the stream without a result")


def _build(args: argparse.Namespace) -> int:
    body = {"ref": args.ref} if args.ref else {}
    result = run_job(api(args), f"/build/builds/{args.app}", body, args.json)
    if args.json:
        emit_json({"version": result["version"], "sha256": result["sha256"]})
    else:
        say(f"built {args.app} version {result['version']} (commit {result['commit'][:12]})")
    return 0


def _bake(args: argparse.Namespace) -> int:
    embargo = [e.strip() for e in args.embargo.split(",") if e.strip()]
    body: dict[str, Any] = {"embargo": embargo}
    if args.target:
        body["target"] = args.target
    path = f"/bake/images/{args.app}/{args.version}"
    client = api(args)
    if args.dry_run:
        answer = client.call("POST", path, json={**body, "dry_run": True})
        emit_json(answer)
        return 0
    result = run_job(client, path, body, args.json)
    if args.json:
        emit_json({"image": result["image"], "target": result["target"]})
    else:
        say(f"baked {result['image']} ({result['name']}) for {result['target']}")
    return 0


def _bake_base(args: argparse.Namespace) -> int:
    target = args.target or args.provider
    body = {"target": target} if target else {}
    result = run_job(api(args), "/bake/base", body, args.json)
    if args.json:
        emit_json({"image": result["image"], "target": result["target"]})
    else:
        say(f"baked base image {result['image']} ({result['name']}) for {result['target']}")
    return 0


def _images(args: argparse.Namespace) -> int:
    params = {"target": args.target} if args.target else {}
    images = api(args).call("GET", f"/bake/images/{args.app}", params=params)["images"]
    if args.json:
        emit_json(images)
    else:
        table(
            ["image", "version", "target", "created", "embargo"],
            [
                [i["id"], i["version"], i["target"], i["created_at"], ",".join(i["embargo"])]
                for i in images
            ],
        )
    return 0


def _delete_image(args: argparse.Namespace) -> int:
    params = {"target": args.target} if args.target else {}
    api(args).call("DELETE", f"/bake/images/{args.app}/{args.image}", params=params)
    if args.json:
        emit_json({"deleted": args.image})
    else:
        say(f"deleted {args.image}")
    return 0
