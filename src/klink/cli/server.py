"""``klink serve``: run the combined server (or one service) in the foreground."""

from __future__ import annotations

import argparse

from klink.cli.api import CliError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    serve = sub.add_parser(
        "serve",
        help="run every Klink service in this process",
        description="Run the Klink server (KLINK_LISTEN, default 127.0.0.1:8642).",
    )
    serve.add_argument(
        "--service",
        action="append",
        dest="services",
        help="run only this service (repeatable); default: all",
    )
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from klink.errors import KlinkError
    from klink.server import serve
    from klink.settings import Settings

    try:
        settings = Settings.from_env()
        serve(settings, args.services)
    except KlinkError as exc:
        raise CliError(exc.message) from None
    return 0
