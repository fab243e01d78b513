"""The ``klink …`` commands that README.md and docs/*.md show, as argument lists to check.

A *command line* is a line that starts with ``klink `` (or ``$ klink ``), in a code block or
indented in a list; ``\\`` continues it and ``&&`` chains several. A *mention* is an inline
code span (`` `klink serve` ``) in prose, which may leave out required arguments but must not
say anything the CLI refuses. The docs' synopsis notation is expanded before parsing:
``[optional]`` parts both left out and put in, ``a|b|c`` words into each alternative, and an
ALL-CAPS placeholder (``APP``, ``N``) into a sample value (``COMMAND`` into every command).
"""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from klink.cli import parse

ROOT = Path(__file__).resolve().parents[2]
_PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$")
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_INLINE = re.compile(r"`(klink(?: [^`]*)?)`")


@dataclass(frozen=True)
class Documented:
    where: str  # file:line
    text: str  # as written, from "klink" on (a line may chain several with &&)
    mention: bool  # an inline span, not a command line

    @property
    def synopsis(self) -> bool:
        """Written in synopsis notation (so a pattern of commands, not one to run)."""
        words = self.text.split()
        return any(c in self.text for c in "[]|…") or any(
            _PLACEHOLDER.fullmatch(w.split("=")[0]) for w in words
        )


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented(path: Path) -> list[Documented]:
    found: list[Documented] = []
    lines = path.read_text().splitlines()
    name = path.relative_to(ROOT)
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index].strip()
        while line.endswith("\\") and index + 1 < len(lines):
            index += 1
            line = line[:-1] + " " + lines[index].strip()
        index += 1
        if line.startswith(("klink ", "$ klink ")):
            found.append(Documented(f"{name}:{number}", line.removeprefix("$ "), False))
            continue
        found += [Documented(f"{name}:{number}", span, True) for span in _INLINE.findall(line)]
    return found


def expansions(text: str) -> list[list[str]]:
    """Every argument list (after ``klink``) that a documented text stands for."""
    variants = {_BRACKETS.sub("", text), _BRACKETS.sub(r"\1", text)}
    while any(_BRACKETS.search(v) for v in variants):  # nested: [search [prod]]
        variants = {_BRACKETS.sub(r"\1", v) for v in variants} | {
            _BRACKETS.sub("", v) for v in variants
        }
    result: list[list[str]] = []
    for variant in sorted(variants):
        words = shlex.split(variant, comments=True)
        chain = [list(g) for sep, g in itertools.groupby(words, lambda w: w == "&&") if not sep]
        for command in chain:
            if command[:1] == ["klink"]:
                result += _choices(command[1:])
    return result


def _choices(words: list[str]) -> list[list[str]]:
    choices: list[list[str]] = []
    for position, word in enumerate(words):
        if position == 0 and word == "COMMAND":
            choices.append(parse.top_names())
        elif "|" in word and all(re.fullmatch(r"[a-z-]+", w) for w in word.split("|")):
            choices.append(word.split("|"))
        elif _PLACEHOLDER.fullmatch(word):
            choices.append(["1"])
        else:
            choices.append([word])
    return [list(argv) for argv in itertools.product(*choices)]


def parse_error(argv: list[str], mention: bool = False) -> str | None:
    """What the CLI's own parser (the one verb table, ``cli/parse.py``) says of ``klink ARGV``
    (None: it parses).

    A mention may leave out required arguments; nothing else is forgiven.
    """
    if not argv:
        return None if mention else "no command"
    if argv[0] in ("-h", "--help", "--version"):
        return None
    try:
        parse.resolve(argv)
    except parse.HelpWanted:
        return None
    except parse.UsageError as exc:
        if mention and "the following arguments are required" in exc.message:
            return None
        return exc.message
    return None
