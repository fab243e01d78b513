"""``klink serve`` and ``klink worker``: the server's processes, run in the foreground.

``serve`` runs the combined server (or one service); ``worker`` runs the deployment engine
alone. With ``local-cloud`` and ``stop`` (``cli/local.py``) these are the CLI's process entry
points, the only commands that import server-side code: every other command is a client of
the HTTP APIs (the import contracts in pyproject.toml check it).
"""

from __future__ import annotations

from klink.cli.api import CliError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from klink.cli.parse import Args


def _serve(args: Args) -> int:
    from klink.errors import KlinkError
    from klink.server import serve
    from klink.settings import Settings

    try:
        settings = Settings.from_env()
        serve(settings, args.services)
    except KlinkError as exc:
        raise CliError(exc.message) from None
    return 0


def _worker(args: Args) -> int:
    from klink.deploy.worker import run_worker
    from klink.errors import KlinkError
    from klink.settings import Settings

    try:
        run_worker(Settings.from_env())
    except KlinkError as exc:
        raise CliError(exc.message) from None
    return 0
