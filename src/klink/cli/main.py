"""``klink`` entry point: argparse, built from command modules that import nothing heavy.

Each module in ``COMMAND_MODULES`` has ``register(subparsers)``; a command's handler takes the
parsed arguments and returns an exit code. Heavy imports (httpx, the server, boto3) happen inside
handlers, so ``klink --help`` starts about as fast as Python itself. Exit codes: 0 success,
1 the operation failed, 2 bad usage; errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from klink import __version__
from klink.cli.api import CliError

COMMAND_MODULES = (
    "klink.cli.server",
    "klink.cli.meta",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="klink",
        description="Immutable red-black deployments: build, bake, deploy, undo.",
    )
    parser.add_argument("--version", action="version", version=f"klink {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", help="Klink server URL (env KLINK_SERVER)")
    common.add_argument("--token", help="API token (env KLINK_TOKEN)")
    common.add_argument("--json", action="store_true", help="machine output on stdout")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = handler(args)
    except CliError as exc:
        sys.stderr.write(f"klink: {exc.message}\n")
        return exc.code
    except KeyboardInterrupt:
        sys.stderr.write("klink: interrupted\n")
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
