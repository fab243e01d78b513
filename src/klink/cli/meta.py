"""Applications, environments, properties and tokens: the metadata commands."""

from __future__ import annotations

from klink.cli import jsonlite as json
from klink.cli.api import Api, CliError, client_for
from klink.cli.output import emit_json, say, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from klink.cli.parse import Args


def api(args: Args) -> Api:
    return client_for(args)


def parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _pairs(items: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CliError(f"--set {item!r}: expected KEY=VALUE", code=2)
        result[key] = parse_value(raw)
    return result


def _apps(args: Args) -> int:
    records = api(args).call("GET", "/metadata/applications", params={"view": "full"})
    apps = records["applications"]
    if args.json:
        emit_json(apps)
    else:
        table(
            ["name", "contact", "blocked"],
            [[a["name"], a["metadata"].get("contact"), a["metadata"].get("blocked")] for a in apps],
        )
    return 0


def _info(args: Args) -> int:
    record = api(args).call("GET", f"/metadata/applications/{args.app}")
    if args.json:
        emit_json(record)
    else:
        say(f"{record['name']}  (created {record['created_at']})")
        table(["key", "value"], sorted(record["metadata"].items()))
    return 0


def _create_app(args: Args) -> int:
    metadata = {"contact": args.contact, **_pairs(args.set)}
    body = {"name": args.app, "metadata": metadata}
    record = api(args).call("POST", "/metadata/applications", json=body)  # 409 if it exists
    if args.json:
        emit_json(record)
    else:
        say(f"created application {record['name']}")
    return 0


def _envs(args: Args) -> int:
    envs = api(args).call("GET", "/metadata/environments", params={"view": "full"})["environments"]
    if args.json:
        emit_json(envs)
    else:
        table(
            ["name", "provider", "region"],
            [[e["name"], e["metadata"].get("provider"), e["metadata"].get("region")] for e in envs],
        )
    return 0


def _create_env(args: Args) -> int:
    metadata: dict[str, Any] = {"provider": args.provider}
    for key, value in (
        ("region", args.region),
        ("account_id", args.account_id),
        ("role_arn", args.role_arn),
        ("endpoint_url", args.endpoint_url),
    ):
        if value is not None:
            metadata[key] = value
    if args.create_config_repo:
        metadata["createConfigRepo"] = True
    metadata.update(_pairs(args.set))
    body = {"name": args.env, "metadata": metadata}
    record = api(args).call("POST", "/metadata/environments", json=body)  # 409 if it exists
    if args.json:
        emit_json(record)
    else:
        say(f"created environment {record['name']} ({args.provider})")
    return 0


def _prop(args: Args) -> int:
    kind = "environments" if args.is_env else "applications"
    path = f"/metadata/{kind}/{args.name}/{args.key}"
    client = api(args)
    if args.verb == "get":
        result = client.call("GET", path)
        if args.json:
            emit_json(result)
        else:
            value = result["value"]
            say(value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True))
    elif args.verb == "set":
        result = client.call("PUT", path, json={"value": parse_value(args.value)})
        if args.json:
            emit_json(result)
        else:
            say(f"{args.name}.{args.key} = {json.dumps(result['value'], sort_keys=True)}")
    else:
        client.call("DELETE", path)
        if args.json:
            emit_json({"key": args.key, "deleted": True})
        else:
            say(f"deleted {args.name}.{args.key}")
    return 0


def _token_create(args: Args) -> int:
    body = {"name": args.name, "role": args.role, "envs": args.envs}
    result = api(args).call("POST", "/auth/tokens", json=body)
    if args.json:
        emit_json(result)
    else:
        scope = f" on {', '.join(result['envs'])}" if result["envs"] else ""
        say(f"token {result['name']} ({result['role']}{scope}); shown once, keep it safe:")
        say(result["token"])
    return 0


def _token_list(args: Args) -> int:
    tokens = api(args).call("GET", "/auth/tokens")["tokens"]
    if args.json:
        emit_json(tokens)
    else:
        table(
            ["name", "role", "envs", "created_by", "created_at"],
            [[t["name"], t["role"], t["envs"], t["created_by"], t["created_at"]] for t in tokens],
        )
    return 0


def _token_delete(args: Args) -> int:
    api(args).call("DELETE", f"/auth/tokens/{args.name}")
    if args.json:
        emit_json({"name": args.name, "deleted": True})
    else:
        say(f"deleted token {args.name}")
    return 0
