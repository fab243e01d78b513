"""Applications, environments, properties and tokens: the metadata commands."""

from __future__ import annotations

import argparse
import json

from klink.cli.api import Api, CliError, resolve
from klink.cli.output import emit_json, say, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def api(args: argparse.Namespace) -> Api:
    return Api(resolve(args.server, args.token))


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("apps", parents=[common], help="list applications")
    p.set_defaults(handler=_apps)

    p = sub.add_parser("info", parents=[common], help="show an application and its metadata")
    p.add_argument("app")
    p.set_defaults(handler=_info)

    p = sub.add_parser("create-app", parents=[common], help="create an application")
    p.add_argument("app")
    p.add_argument("--contact", required=True, help="e-mail of who to call (required to deploy)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more metadata (VALUE parsed as JSON, else a string); repeatable",
    )
    p.set_defaults(handler=_create_app)

    p = sub.add_parser("envs", parents=[common], help="list environments")
    p.set_defaults(handler=_envs)

    p = sub.add_parser("create-env", parents=[common], help="create an environment")
    p.add_argument("env")
    p.add_argument("--provider", required=True, choices=["local", "aws"])
    p.add_argument("--region", help="aws: region")
    p.add_argument("--account-id", help="aws: 12-digit account id")
    p.add_argument("--role-arn", help="aws: role to assume")
    p.add_argument("--endpoint-url", help="aws: API endpoint (tests point it at moto)")
    p.add_argument(
        "--create-config-repo",
        action="store_true",
        help="create a config repository here for every new application",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more metadata (VALUE parsed as JSON, else a string); repeatable",
    )
    p.set_defaults(handler=_create_env)

    prop = sub.add_parser("prop", help="get, set or delete one metadata property")
    verbs = prop.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in ("get", "set", "delete"):
        p = verbs.add_parser(verb, parents=[common], help=f"{verb} a property")
        p.add_argument("name", metavar="APP", help="application (or environment with --env)")
        p.add_argument("key")
        if verb == "set":
            p.add_argument("value", help="parsed as JSON, else taken as a string")
        p.add_argument(
            "--env",
            dest="is_env",
            action="store_true",
            help="NAME is an environment, not an application",
        )
        p.set_defaults(handler=_prop)

    token = sub.add_parser("token", help="manage API tokens")
    verbs = token.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = verbs.add_parser("create", parents=[common], help="create a token (printed once)")
    p.add_argument("--name", required=True)
    p.add_argument("--role", required=True, choices=["reader", "deployer", "admin"])
    p.add_argument(
        "--env",
        dest="envs",
        action="append",
        help="deployer only: limit to this environment (repeatable)",
    )
    p.set_defaults(handler=_token_create)
    p = verbs.add_parser("list", parents=[common], help="list tokens")
    p.set_defaults(handler=_token_list)
    p = verbs.add_parser("delete", parents=[common], help="delete a token")
    p.add_argument("name")
    p.set_defaults(handler=_token_delete)


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


def _apps(args: argparse.Namespace) -> int:
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


def _info(args: argparse.Namespace) -> int:
    record = api(args).call("GET", f"/metadata/applications/{args.app}")
    if args.json:
        emit_json(record)
    else:
        say(f"{record['name']}  (created {record['created_at']})")
        table(["key", "value"], sorted(record["metadata"].items()))
    return 0


def _create_app(args: argparse.Namespace) -> int:
    metadata = {"contact": args.contact, **_pairs(args.set)}
    body = {"name": args.app, "metadata": metadata}
    record = api(args).call("POST", "/metadata/applications", json=body)  # 409 if it exists
    if args.json:
        emit_json(record)
    else:
        say(f"created application {record['name']}")
    return 0


def _envs(args: argparse.Namespace) -> int:
    envs = api(args).call("GET", "/metadata/environments", params={"view": "full"})["environments"]
    if args.json:
        emit_json(envs)
    else:
        table(
            ["name", "provider", "region"],
            [[e["name"], e["metadata"].get("provider"), e["metadata"].get("region")] for e in envs],
        )
    return 0


def _create_env(args: argparse.Namespace) -> int:
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


def _prop(args: argparse.Namespace) -> int:
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


def _token_create(args: argparse.Namespace) -> int:
    body = {"name": args.name, "role": args.role, "envs": args.envs}
    result = api(args).call("POST", "/auth/tokens", json=body)
    if args.json:
        emit_json(result)
    else:
        scope = f" on {', '.join(result['envs'])}" if result["envs"] else ""
        say(f"token {result['name']} ({result['role']}{scope}); shown once, keep it safe:")
        say(result["token"])
    return 0


def _token_list(args: argparse.Namespace) -> int:
    tokens = api(args).call("GET", "/auth/tokens")["tokens"]
    if args.json:
        emit_json(tokens)
    else:
        table(
            ["name", "role", "envs", "created_by", "created_at"],
            [[t["name"], t["role"], t["envs"], t["created_by"], t["created_at"]] for t in tokens],
        )
    return 0


def _token_delete(args: argparse.Namespace) -> int:
    api(args).call("DELETE", f"/auth/tokens/{args.name}")
    if args.json:
        emit_json({"name": args.name, "deleted": True})
    else:
        say(f"deleted token {args.name}")
    return 0
