"""How the verb table is written: ``Arg`` and ``Verb``, and ``pos``/``opt``/``flag``.

No imports, no dataclasses (they cost start-up): ``klink --help`` builds the table on every
start. The table itself is ``klink.cli.verbs``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class Arg:
    """One argument. ``kind``: ``pos`` (positional), ``flag`` (true when given), ``value``
    (takes one value; repeatable with ``append``)."""

    __slots__ = (
        "append",
        "choices",
        "default",
        "dest",
        "help",
        "hidden",
        "kind",
        "metavar",
        "names",
        "optional",
        "required",
        "type",
    )

    def __init__(
        self,
        kind: str,
        names: tuple[str, ...],
        dest: str,
        *,
        help: str = "",
        default: object = None,
        required: bool = False,
        optional: bool = False,
        type: Callable[[str], object] | None = None,
        choices: tuple[str, ...] | None = None,
        metavar: str | None = None,
        append: bool = False,
        hidden: bool = False,
    ) -> None:
        self.kind = kind
        self.names = names
        self.dest = dest
        self.help = help
        self.default = default
        self.required = required
        self.optional = optional
        self.type = type
        self.choices = choices
        self.metavar = metavar or (dest.upper() if kind == "pos" else names[-1][2:].upper())
        self.append = append
        self.hidden = hidden


def pos(dest: str, help: str = "", *, optional: bool = False, **kw: object) -> Arg:
    return Arg("pos", (), dest, help=help, optional=optional, **kw)  # type: ignore[arg-type]


def opt(*names: str, help: str = "", dest: str | None = None, **kw: object) -> Arg:
    name = dest or names[-1].lstrip("-").replace("-", "_")
    return Arg("value", names, name, help=help, **kw)  # type: ignore[arg-type]


def flag(*names: str, help: str = "", dest: str | None = None, **kw: object) -> Arg:
    name = dest or names[-1].lstrip("-").replace("-", "_")
    return Arg("flag", names, name, help=help, default=False, **kw)  # type: ignore[arg-type]


class Verb:
    """One command. ``common``: takes --server, --token and --json. ``fixed``: attributes the
    handler finds set (one handler serving several verbs)."""

    __slots__ = ("args", "chat", "common", "fixed", "handler", "help", "hidden", "name", "words")

    def __init__(
        self,
        name: str,
        handler: str,
        help: str,
        *args: Arg,
        chat: str | None = None,
        common: bool = True,
        hidden: bool = False,
        fixed: dict[str, object] | None = None,
    ) -> None:
        self.name = name
        self.words = tuple(name.split())
        self.handler = handler
        self.help = help
        self.chat = chat
        self.common = common
        self.hidden = hidden
        self.fixed = fixed or {}
        self.args = (*args, *(COMMON if common else ()))


COMMON = (
    opt("--server", help="Klink server URL (env KLINK_SERVER)"),
    opt("--token", help="API token (env KLINK_TOKEN)"),
    flag("--json", help="machine output on stdout"),
)
