"""Build and bake commands: ``build``, ``bake``, ``bake-base``, ``images``, ``delete-image``.

Builds and bakes stream their output live: the server answers with one JSON object per line
(``{"log"}`` lines, then ``{"result"}`` or ``{"error"}``). Log lines go to stderr with
``--json`` (stdout then holds only the result) and to stdout otherwise.
"""

from __future__ import annotations

from klink.cli import jsonlite as json
from klink.cli.api import Api, CliError, client_for
from klink.cli.output import emit_json, errors, out, say, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from klink.cli.parse import Args


def api(args: Args) -> Api:
    return client_for(args)


# Builds and bakes may be silent for long stretches (Packer waiting on AWS); the server's own
# time limits end them, so the CLI waits as long as the stream is open.
STREAM_TIMEOUT = 24 * 3600.0


def run_job(client: Api, path: str, body: dict[str, Any], quiet: bool) -> dict[str, Any]:
    """POST ``path`` and follow the job's output; return its result or raise CliError."""
    log = errors() if quiet else out()
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


def _build(args: Args) -> int:
    body = {"ref": args.ref} if args.ref else {}
    result = run_job(api(args), f"/build/builds/{args.app}", body, args.json)
    if args.json:
        emit_json({"version": result["version"], "sha256": result["sha256"]})
    else:
        say(f"built {args.app} version {result['version']} (commit {result['commit'][:12]})")
    return 0


def _bake(args: Args) -> int:
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


def _bake_base(args: Args) -> int:
    target = args.target or args.provider
    body = {"target": target} if target else {}
    result = run_job(api(args), "/bake/base", body, args.json)
    if args.json:
        emit_json({"image": result["image"], "target": result["target"]})
    else:
        say(f"baked base image {result['image']} ({result['name']}) for {result['target']}")
    return 0


def _images(args: Args) -> int:
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


def _delete_image(args: Args) -> int:
    params = {"target": args.target} if args.target else {}
    api(args).call("DELETE", f"/bake/images/{args.app}/{args.image}", params=params)
    if args.json:
        emit_json({"deleted": args.image})
    else:
        say(f"deleted {args.image}")
    return 0
