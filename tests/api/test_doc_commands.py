"""Every ``klink …`` that README.md and docs/*.md show is parsed by the CLI's own parser, and
those that only touch records (apps, environments, properties, tokens, the audit log) run, in
the order each document gives them, against a live server."""

from __future__ import annotations

from pathlib import Path

import pytest

from klink.cli.main import main
from tests.api import doccommands
from tests.api.doccommands import Documented, expansions, parse_error
from tests.conftest import LiveServer

# Commands that need nothing but the server's records: safe and quick to run for real.
RUNNABLE = frozenset(
    {"apps", "envs", "info", "create-app", "create-env", "prop", "token", "audit", "deployments"}
)


def all_documented() -> list[Documented]:
    return [d for path in doccommands.documents() for d in doccommands.documented(path)]


def test_the_docs_show_commands_to_check() -> None:
    found = all_documented()
    assert len([d for d in found if not d.mention]) > 50
    assert any(d.where.startswith("docs/aws.md") for d in found)


def test_every_documented_command_parses() -> None:
    problems = []
    for d in all_documented():
        try:
            variants = expansions(d.text)
        except ValueError as exc:  # shlex: a quote left open
            problems.append(f"{d.where}: klink {d.text}: {exc}")
            continue
        problems += [
            f"{d.where}: klink {' '.join(argv)}: {error}"
            for argv in variants
            if (error := parse_error(argv, d.mention)) is not None
        ]
    assert problems == []


@pytest.mark.parametrize(
    ("text", "mention", "error"),
    [
        (
            "create-env prod provider=aws region=eu-west-1",
            False,
            "unrecognized arguments: provider=aws region=eu-west-1",
        ),
        ("create-env prod --provider aws --region", False, "expected one argument"),
        ("deploy search prod img-1 --message why --colour", False, "unrecognized arguments"),
        ("build", False, "the following arguments are required: app"),
        ("stop --grace soon", True, "invalid float value: 'soon'"),
        ("nosuch", True, "invalid choice: 'nosuch'"),
    ],
)
def test_a_wrong_command_is_caught(text: str, mention: bool, error: str) -> None:
    [argv] = expansions(f"klink {text}")
    found = parse_error(argv, mention)
    assert found is not None
    assert error in found


def test_synopsis_notation_expands() -> None:
    assert expansions("klink pause|resume search prod") == [
        ["pause", "search", "prod"],
        ["resume", "search", "prod"],
    ]
    nested = expansions("klink deployments [search [prod]] [--status completed]")
    assert ["deployments"] in nested
    assert ["deployments", "search", "prod", "--status", "completed"] in nested
    assert expansions("klink infra history APP ENV --limit N") == [
        ["infra", "history", "1", "1", "--limit", "1"]
    ]
    assert ["audit", "--help"] in expansions("klink COMMAND --help")


def _runnable(path: Path) -> list[Documented]:
    return [
        d
        for d in doccommands.documented(path)
        if not d.mention and not d.synopsis and d.text.split()[1] in RUNNABLE
    ]


@pytest.mark.parametrize(
    "path",
    [p for p in doccommands.documents() if _runnable(p)],
    ids=lambda p: p.name,
)
def test_documented_record_commands_run(
    path: Path, live_server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for d in _runnable(path):
        [argv] = expansions(d.text)  # one command: a chain is never runnable here
        code = main([*argv, "--server", live_server.url, "--token", live_server.token])
        err = capsys.readouterr().err
        assert code == 0, f"{d.where}: klink {d.text}: {err}"
