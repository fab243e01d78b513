"""``klink serve`` and ``klink worker``: the server's processes, run in the foreground.

``serve`` runs the combined server (or one service); ``worker`` runs the deployment engine
alone. With ``local-cloud`` and ``stop`` (``cli/local.py``) these are the CLI's process entry
points, the only commands that import server-side code: every other command is a client of
the HTTP APIs (the import contracts in pyproject.toml check it).
"""

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

    worker = sub.add_parser("worker", help="run the deployment engine alone (no API)")
    worker.set_defaults(handler=_worker)


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


def _worker(args: argparse.Namespace) -> int:
    from klink.deploy.worker import run_worker
    from klink.errors import KlinkError
    from klink.settings import Settings

    try:
        run_worker(Settings.from_env())
    except KlinkError as exc:
        raise CliError(exc.message) from None
    return 0
