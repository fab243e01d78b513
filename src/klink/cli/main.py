"""``klink`` entry point.

Start-up speed is a feature: ``klink --help`` must start about as fast as Python itself, so the
top level imports nothing but ``sys`` and the verb table (``klink.cli.verbs``, plain data): the
top-level help is printed from the table, a command line is parsed with it by
``klink.cli.parse`` (not argparse, which alone costs more than Python's own start-up), and a
command imports only its own handler's module. The chat service uses the same table.
Exit codes: 0 success, 1 the operation failed, 2 bad usage; errors are one line on stderr.
"""

from __future__ import annotations

import sys

from klink import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from klink.cli.parse import Args

DESCRIPTION = "Immutable red-black deployments: build, bake, deploy, undo."


def usage() -> str:
    from klink.cli.verbs import GROUPS, VERBS

    listed: dict[str, str] = {}
    for verb in VERBS:
        word = verb.words[0]
        if not verb.hidden and word not in listed:
            listed[word] = GROUPS.get(word, verb.help) if len(verb.words) == 2 else verb.help
    width = max(len(name) for name in listed) + 2
    lines = [
        "usage: klink [-h] [--version] COMMAND ...",
        "",
        DESCRIPTION,
        "",
        "commands:",
        *(f"  {name.ljust(width)}{text}" for name, text in listed.items()),
        "",
        "options:",
        "  -h, --help  show this help message and exit",
        "  --version   show program's version number and exit",
        "",
        "`klink COMMAND --help` tells more. Every command takes --server, --token and --json.",
    ]
    return "\n".join(lines) + "\n"


def _help(_args: object) -> int:
    sys.stdout.write(usage())
    return 0


def handler_of(spec: str) -> Callable[[Args], int]:
    """The function a verb's ``handler`` names (``module:function``), imported now."""
    import importlib

    module, _, name = spec.partition(":")
    function: Callable[[Args], int] = getattr(importlib.import_module(module), name)
    return function


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] in ("-h", "--help"):
        (sys.stdout if args_list else sys.stderr).write(usage())
        return 0 if args_list else 2
    if args_list[0] == "--version":
        sys.stdout.write(f"klink {__version__}\n")
        return 0
    from klink.cli.parse import HelpWanted, UsageError, resolve

    try:
        verb, args = resolve(args_list)
    except HelpWanted as wanted:
        sys.stdout.write(wanted.text)
        return 0
    except UsageError as exc:
        # argparse's shape and exit code (2), which scripts and tests rely on.
        sys.stderr.write(f"{exc.usage}\nklink: error: {exc.message}\n")
        raise SystemExit(2) from None
    from klink.cli.api import CliError

    try:
        code: int = handler_of(verb.handler)(args)
    except CliError as exc:
        sys.stderr.write(f"klink: {exc.message}\n")
        return exc.code
    except KeyboardInterrupt:
        sys.stderr.write("klink: interrupted\n")
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
