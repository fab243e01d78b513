"""``klink serve``: run the combined server (or one service) in the foreground."""

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
