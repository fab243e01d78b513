"""The one parser of Klink command lines, driven by the verb table (``klink.cli.verbs``).

The CLI parses ``sys.argv`` with it and the chat service parses a message (split like a shell)
with it, so a command means the same in a terminal and in a room. It reads like argparse for
what Klink uses (positionals, optional positionals, ``--opt VALUE``/``--opt=VALUE``, flags,
repeatable options, types, choices, required options, ``--``) and answers a bad command line
with ``UsageError`` carrying argparse's wording; ``-h``/``--help`` raise ``HelpWanted``. It is
not argparse because argparse alone costs more start-up than all of Python (see bench/).
"""

from __future__ import annotations

from klink.cli.verbs import VERBS, Arg, Verb, find, group

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any


class Args:
    """The parsed arguments: one attribute per argument ``dest``, plus ``verb.fixed``."""

    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)

    def override(self, **values: object) -> None:
        """Set what the caller decides rather than the command line (chat: server, token)."""
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:  # only called for missing attributes
        raise AttributeError(name)

    def __repr__(self) -> str:
        # A token (the CLI's, or chat's internal one) never reaches a log line through repr().
        shown = {
            k: "***" if k in ("token", "headers") and v else v for k, v in self.__dict__.items()
        }
        return f"Args({shown!r})"


class UsageError(Exception):
    """A command line that does not fit the table; ``usage`` is the verb's usage line."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


class HelpWanted(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _label(arg: Arg) -> str:
    return "/".join(arg.names) if arg.names else arg.dest


def _convert(arg: Arg, raw: str, usage: str) -> object:
    if arg.choices is not None and raw not in arg.choices:
        choices = ", ".join(repr(c) for c in arg.choices)
        raise UsageError(
            f"argument {_label(arg)}: invalid choice: {raw!r} (choose from {choices})", usage
        )
    if arg.type is None:
        return raw
    try:
        return arg.type(raw)
    except ValueError:
        name = getattr(arg.type, "__name__", "value")
        raise UsageError(f"argument {_label(arg)}: invalid {name} value: {raw!r}", usage) from None


def parse(verb: Verb, argv: Sequence[str], prog: str = "klink") -> Args:
    """The arguments of ``verb`` given the words after the verb's own."""
    use = usage(verb, prog)
    values: dict[str, object] = {a.dest: a.default for a in verb.args}
    values.update(verb.fixed)
    options = {name: a for a in verb.args for name in a.names}
    positionals = [a for a in verb.args if a.kind == "pos"]
    given: list[str] = []
    seen: set[str] = set()
    items = list(argv)
    index = 0
    only_positional = False
    while index < len(items):
        word = items[index]
        index += 1
        if only_positional or not word.startswith("-") or word == "-" or _number(word):
            given.append(word)
            continue
        if word == "--":
            only_positional = True
            continue
        if word in ("-h", "--help"):
            raise HelpWanted(help_text(verb, prog))
        name, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        arg = options.get(name)
        if arg is None and name.startswith("--"):
            # A unique prefix of a long option, as argparse allows (--dry for --dry-run).
            matches = {a.dest: a for n, a in options.items() if n.startswith(name)}
            if len(matches) > 1:
                names = ", ".join(n for n in options if n.startswith(name))
                raise UsageError(f"ambiguous option: {name} could match {names}", use)
            arg = next(iter(matches.values()), None)
        if arg is None:
            raise UsageError(f"unrecognized arguments: {word}", use)
        seen.add(arg.dest)
        if arg.kind == "flag":
            if eq:
                raise UsageError(f"argument {_label(arg)}: ignored explicit argument", use)
            values[arg.dest] = True
            continue
        if eq:
            raw = inline
        elif (
            index < len(items) and not (items[index].startswith("-") and items[index] != "-")
        ) or (index < len(items) and _number(items[index])):
            raw = items[index]
            index += 1
        else:
            raise UsageError(f"argument {_label(arg)}: expected one argument", use)
        value = _convert(arg, raw, use)
        if arg.append:
            current = values[arg.dest]
            values[arg.dest] = [*current, value] if isinstance(current, list) else [value]
        else:
            values[arg.dest] = value
    required = [a for a in positionals if not a.optional]
    optional = [a for a in positionals if a.optional]
    if len(given) < len(required):
        missing = [a.dest for a in required[len(given) :]]
        missing += [_label(a) for a in verb.args if a.required and a.dest not in seen]
        raise UsageError(f"the following arguments are required: {', '.join(missing)}", use)
    extra = len(given) - len(required)
    if extra > len(optional):
        raise UsageError(
            f"unrecognized arguments: {' '.join(given[-(extra - len(optional)) :])}", use
        )
    # Positionals in table order; optional ones are filled left to right with what is left.
    take = iter(given)
    budget = extra
    for arg in positionals:
        if arg.optional:
            if budget == 0:
                continue
            budget -= 1
        values[arg.dest] = _convert(arg, next(take), use)
    missing = [_label(a) for a in verb.args if a.required and a.dest not in seen]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join(missing)}", use)
    return Args(**values)


def _number(token: str) -> bool:
    return token[:1] == "-" and token[1:].replace(".", "", 1).isdigit()


def resolve(words: Sequence[str], prog: str = "klink") -> tuple[Verb, Args]:
    """The verb and arguments of a whole command line (``deploy search prod …``)."""
    verb, taken = find(list(words[:2]))
    if verb is None:
        if words and group(words[0]):
            sub = group(words[0])
            use = f"usage: {prog} {words[0]} VERB ..."
            if len(words) == 1:
                raise UsageError("the following arguments are required: VERB", use)
            if words[1] in ("-h", "--help"):
                raise HelpWanted(group_help(words[0], prog))
            names = ", ".join(repr(v.words[1]) for v in sub)
            raise UsageError(
                f"argument VERB: invalid choice: {words[1]!r} (choose from {names})", use
            )
        names = ", ".join(repr(n) for n in top_names())
        word = words[0] if words else ""
        raise UsageError(
            f"argument COMMAND: invalid choice: {word!r} (choose from {names})",
            f"usage: {prog} COMMAND ...",
        )
    return verb, parse(verb, words[taken:], prog)


def top_names() -> list[str]:
    names: list[str] = []
    for verb in VERBS:
        word = verb.words[0]
        if word not in names and not verb.hidden:
            names.append(word)
    return names


def _shown(arg: Arg) -> str:
    if arg.kind == "pos":
        return f"[{arg.metavar}]" if arg.optional else arg.metavar
    text = arg.names[0] if arg.kind == "flag" else f"{arg.names[0]} {arg.metavar}"
    return text if arg.required else f"[{text}]"


def usage(verb: Verb, prog: str = "klink") -> str:
    shown = [_shown(a) for a in verb.args if not a.hidden]
    return f"usage: {prog} {verb.name} {' '.join(shown)}".rstrip()


def help_text(verb: Verb, prog: str = "klink") -> str:
    lines = [usage(verb, prog), "", verb.help]
    positionals = [a for a in verb.args if a.kind == "pos"]
    options = [a for a in verb.args if a.kind != "pos" and not a.hidden]
    if positionals:
        lines += ["", "arguments:"]
        lines += [f"  {a.metavar:<24}{a.help}".rstrip() for a in positionals]
    lines += ["", "options:", f"  {'-h, --help':<24}show this help and exit"]
    for arg in options:
        names = ", ".join(arg.names) + ("" if arg.kind == "flag" else f" {arg.metavar}")
        extra = f" (default {arg.default})" if arg.default not in (None, False, [], "") else ""
        lines.append(f"  {names:<24}{arg.help}{extra}".rstrip())
    return "\n".join(lines) + "\n"


def group_help(word: str, prog: str = "klink") -> str:
    sub = group(word)
    width = max(len(v.words[1]) for v in sub) + 2
    lines = [f"usage: {prog} {word} VERB ...", "", "verbs:"]
    lines += [f"  {v.words[1].ljust(width)}{v.help}" for v in sub]
    return "\n".join(lines) + "\n"
