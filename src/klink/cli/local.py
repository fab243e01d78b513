"""``klink local-cloud`` (run the local cloud's daemon) and ``klink stop`` (stop this home).

Like ``klink serve``, these run things on this machine rather than call the server; the daemon
and its helpers are imported inside the handlers so ``klink --help`` stays fast.
"""

from __future__ import annotations

import sys

from klink.cli.api import CliError, klink_home

TYPE_CHECKING = False
if TYPE_CHECKING:
    from klink.cli.parse import Args


def _local_cloud(args: Args) -> int:
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


def _stop(args: Args) -> int:
    from pathlib import Path

    from klink.providers.local import control

    stopped = control.stop_all(Path(klink_home()), grace=args.grace)
    if stopped:
        print("stopped: " + ", ".join(stopped))
    else:
        sys.stderr.write("klink: nothing was running\n")
    return 0
