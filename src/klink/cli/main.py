"""``klink`` entry point.

Start-up speed is a feature: ``klink --help`` must start about as fast as Python itself, so the
top level imports nothing but ``sys`` — not even argparse, which alone costs more than Python's
own start-up. ``COMMANDS`` indexes every command (name → module, one-line help): the top-level
help is printed from it, and a command imports only its own module, which builds its argparse
parser with ``register(subparsers, common)``. Modules in ``COMMAND_MODULES`` that the index does
not name yet are still found (by importing them all) — a test keeps the index complete.
Exit codes: 0 success, 1 the operation failed, 2 bad usage; errors are one line on stderr.
"""

from __future__ import annotations

import sys

from klink import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

COMMAND_MODULES = (
    "klink.cli.server",
    "klink.cli.meta",
    "klink.cli.config",
    "klink.cli.local",
    "klink.cli.infra",
    "klink.cli.build",
    "klink.cli.deploy",
    "klink.cli.release",
    "klink.cli.quickstart",
)

# name -> (module, one-line help), in the order `klink --help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "quickstart": (
        "klink.cli.quickstart",
        "run Klink's main job on this machine: build, bake, deploy, redeploy, undo",
    ),
    "serve": ("klink.cli.server", "run every Klink service in this process"),
    "apps": ("klink.cli.meta", "list applications"),
    "info": ("klink.cli.meta", "show an application and its metadata"),
    "create-app": ("klink.cli.meta", "create an application"),
    "envs": ("klink.cli.meta", "list environments"),
    "create-env": ("klink.cli.meta", "create an environment"),
    "prop": ("klink.cli.meta", "get, set or delete one metadata property"),
    "token": ("klink.cli.meta", "manage API tokens"),
    "config": ("klink.cli.config", "configuration repositories: clone, log, show, diff, validate"),
    "local-cloud": ("klink.cli.local", "run the local cloud (instances + HAProxy)"),
    "stop": ("klink.cli.local", "stop the server, local cloud, instances and HAProxy"),
    "infra": ("klink.cli.infra", "plan and apply load balancers, security groups, IAM"),
    "build": ("klink.cli.build", "build the next version of an app"),
    "bake": ("klink.cli.build", "bake an image of an app version"),
    "bake-base": ("klink.cli.build", "bake a new base image now"),
    "images": ("klink.cli.build", "list an app's images"),
    "delete-image": ("klink.cli.build", "deregister an image not in use"),
    "deploy": ("klink.cli.deploy", "deploy an image (red-black)"),
    "promote": ("klink.cli.release", "deploy to an environment the image running in another"),
    "approve": ("klink.cli.release", "approve a deployment that waits for approvals"),
    "reject": ("klink.cli.release", "reject a deployment that waits for approvals"),
    "override": ("klink.cli.release", "let a deployment through its window or freeze (admin)"),
    "watch": ("klink.cli.deploy", "follow a deployment until it ends"),
    "undo": ("klink.cli.deploy", "undo the failed or paused deployment, or the last completed one"),
    "rollback": ("klink.cli.deploy", "deploy the previous image and config again"),
    "redeploy": ("klink.cli.deploy", "deploy the last image with the newest config"),
    "pause": ("klink.cli.deploy", "pause the deployment in progress"),
    "resume": ("klink.cli.deploy", "resume a paused deployment"),
    "cancel": ("klink.cli.deploy", "cancel the deployment in progress"),
    "retry": ("klink.cli.deploy", "re-run the failed action of the deployment in progress"),
    "resize": ("klink.cli.deploy", "resize the current group"),
    "deployments": ("klink.cli.deploy", "deployment history"),
    "boxes": ("klink.cli.deploy", "instances of the current group"),
    "lock": ("klink.cli.deploy", "close Klink for deployments (admin)"),
    "unlock": ("klink.cli.deploy", "reopen Klink, or free a stuck app+env (admin)"),
    "worker": ("klink.cli.server", "run the deployment engine alone"),
}

DESCRIPTION = "Immutable red-black deployments: build, bake, deploy, undo."


def usage() -> str:
    width = max(len(name) for name in COMMANDS) + 2
    lines = [
        "usage: klink [-h] [--version] COMMAND ...",
        "",
        DESCRIPTION,
        "",
        "commands:",
        *(f"  {name.ljust(width)}{text}" for name, (_, text) in COMMANDS.items()),
        "",
        "options:",
        "  -h, --help  show this help message and exit",
        "  --version   show program's version number and exit",
        "",
        "`klink COMMAND --help` tells more. Every command takes --server, --token and --json.",
    ]
    return "\n".join(lines) + "\n"


def build_parser(modules: Sequence[str]) -> argparse.ArgumentParser:
    import argparse
    import importlib

    parser = argparse.ArgumentParser(prog="klink", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"klink {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", help="Klink server URL (env KLINK_SERVER)")
    common.add_argument("--token", help="API token (env KLINK_TOKEN)")
    common.add_argument("--json", action="store_true", help="machine output on stdout")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules:
        importlib.import_module(name).register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] in ("-h", "--help"):
        (sys.stdout if args_list else sys.stderr).write(usage())
        return 0 if args_list else 2
    if args_list[0] == "--version":
        sys.stdout.write(f"klink {__version__}\n")
        return 0
    command = args_list[0]
    if command in COMMANDS:
        modules: Sequence[str] = (COMMANDS[command][0],)
    else:
        modules = COMMAND_MODULES
    parser = build_parser(modules)
    args = parser.parse_args(args_list)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    from klink.cli.api import CliError

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
