"""``klink local-cloud`` (run the local cloud's daemon) and ``klink stop`` (stop this home).

Like ``klink serve``, these run things on this machine rather than call the server; the daemon
and its helpers are imported inside the handlers so ``klink --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from klink.cli.api import CliError, klink_home

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    cloud = sub.add_parser(
        "local-cloud",
        help="run the local cloud (instances + HAProxy) for KLINK_HOME",
        description="Run the local provider's daemon in the foreground (state in "
        "KLINK_HOME/local/); --detach starts it in its own session and returns.",
    )
    cloud.add_argument("--detach", action="store_true", help="start in the background")
    cloud.add_argument("--port", type=int, default=0, help="listen port (default: any free)")
    cloud.set_defaults(handler=_local_cloud)
    stop = sub.add_parser(
        "stop",
        help="stop the server, local cloud, instances and HAProxy of KLINK_HOME",
        description="Stop everything this KLINK_HOME started, in order: the server, the local "
        "cloud daemon, its instances, HAProxy. Nothing running is not an error.",
    )
    stop.add_argument(
        "--grace", type=float, default=10.0, help="seconds before SIGKILL (default 10)"
    )
    stop.set_defaults(handler=_stop)


def _local_cloud(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from klink.errors import KlinkError
    from klink.providers.local import daemon

    home = Path(klink_home())
    if shutil.which("haproxy") is None:
        raise CliError(daemon.INSTALL_HINT)
    try:
        if args.detach:
            url = daemon.ensure(home)
            print(url)
            return 0
        import logging

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        daemon.serve(home, port=args.port)
    except KlinkError as exc:
        raise CliError(exc.message) from None
    return 0


def _stop(args: argparse.Namespace) -> int:
    from pathlib import Path

    from klink.providers.local import control

    stopped = control.stop_all(Path(klink_home()), grace=args.grace)
    if stopped:
        print("stopped: " + ", ".join(stopped))
    else:
        sys.stderr.write("klink: nothing was running\n")
    return 0
