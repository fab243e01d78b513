"""The verb table is the CLI: `klink --help` lists every verb, each verb's handler exists, a
command line parses as argparse would, and start-up stays free of argparse."""

from __future__ import annotations

import subprocess
import sys

import pytest

from klink.cli import main as cli
from klink.cli import verbs
from klink.cli.parse import HelpWanted, UsageError, parse, resolve


def test_every_handler_exists_and_every_verb_is_listed() -> None:
    for verb in verbs.VERBS:
        assert callable(cli.handler_of(verb.handler)), verb.name
    text = cli.usage()
    for word in {v.words[0] for v in verbs.VERBS if not v.hidden}:
        assert f"  {word} " in text
    names = [v.name for v in verbs.VERBS]
    assert len(names) == len(set(names))


def test_chat_verbs_are_the_issues_list() -> None:
    chat = {v.name for v in verbs.VERBS if v.chat}
    wanted = {"build", "bake", "bake-base", "images", "deploy", "undo", "rollback", "redeploy"}
    wanted |= {"pause", "resume", "cancel", "retry", "deployments", "info", "boxes", "config log"}
    wanted |= {"help"}
    assert wanted <= chat
    # Commands that run things on this machine never run from a room.
    assert not chat & {"serve", "stop", "local-cloud", "worker", "quickstart", "config clone"}


def test_top_level_help_imports_no_argparse() -> None:
    code = (
        "import sys; from klink.cli.main import main; main(['--help']); "
        "sys.stderr.write(str('argparse' in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stderr == "False"


def test_a_read_command_imports_no_heavy_module() -> None:
    """What costs start-up (see bench/README.md) stays out of a read command."""
    code = (
        "import sys; from klink.cli.main import main\n"
        "try:\n    main(['deployments', 'hello', 'dev', '--json', '--server', "
        "'http://127.0.0.1:9'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('argparse', 'http.client', 'urllib.parse', 'socket', 'typing',"
        " 'httpx', 'dataclasses') if m in sys.modules]\nsys.stderr.write('HEAVY' + repr(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY[]" in result.stderr, result.stderr


def verb(name: str) -> verbs.Verb:
    found, _ = verbs.find(name.split())
    assert found is not None
    return found


def test_parse_like_argparse() -> None:
    args = parse(verb("deploy"), ["search", "prod", "-m", "why not", "--yes", "--commit=abc"])
    assert (args.app, args.env, args.image, args.message) == ("search", "prod", None, "why not")
    assert (args.yes, args.no_wait, args.commit, args.json) == (True, False, "abc", False)
    args = parse(verb("deploy"), ["-m", "x", "search", "prod", "img-1", "--json"])
    assert (args.image, args.json) == ("img-1", True)
    args = parse(verb("deployments"), ["search", "--limit", "5"])
    assert (args.app, args.env, args.limit) == ("search", None, 5)
    args = parse(verb("config diff"), ["a", "b", "HEAD~1"])
    assert (args.from_ref, args.to_ref) == ("HEAD~1", "HEAD")
    args = parse(verb("create-app"), ["x", "--contact", "c", "--set", "a=1", "--set", "b=2"])
    assert args.set == ["a=1", "b=2"]
    assert parse(verb("undo"), ["a", "b", "-m", "m"]).verb == "undo"
    assert parse(verb("undo"), ["a", "b", "--mess=m", "--dry"]).dry_run is True
    assert parse(verb("token create"), ["--name", "n", "--role", "reader"]).envs is None
    secret = parse(verb("apps"), ["--token", "klk_secret"])
    assert secret.token == "klk_secret"
    assert "klk_secret" not in repr(secret)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("deploy search", "the following arguments are required: env, -m/--message"),
        ("deploy search prod", "the following arguments are required: -m/--message"),
        ("deploy a b c d -m x", "unrecognized arguments: d"),
        ("deployments --limit x", "argument --limit: invalid int value: 'x'"),
        ("deployments --limit", "argument --limit: expected one argument"),
        ("deployments --nope", "unrecognized arguments: --nope"),
        ("deployments --s x", "ambiguous option: --s could match --status, --server"),
        ("create-env e --provider gcp", "argument --provider: invalid choice: 'gcp'"),
        ("nosuchcommand", "argument COMMAND: invalid choice: 'nosuchcommand'"),
        ("config nosuch a b", "argument VERB: invalid choice: 'nosuch'"),
        ("token", "the following arguments are required: VERB"),
    ],
)
def test_bad_command_lines(line: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        resolve(line.split())
    assert message in info.value.message
    assert info.value.usage.startswith("usage: klink")


def test_help_of_a_verb_and_a_group() -> None:
    with pytest.raises(HelpWanted) as info:
        resolve(["deploy", "--help"])
    assert "-m, --message MESSAGE" in info.value.text
    assert "usage: klink deploy APP ENV" in info.value.text
    with pytest.raises(HelpWanted) as info:
        resolve(["config", "--help"])
    assert "  log " in info.value.text
    assert "credential" not in info.value.text


def test_no_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: klink" in capsys.readouterr().err


def test_unknown_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["nosuchcommand"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
