"""The CLI's command index stays complete: `klink --help` lists every command, and each
command is found in the module the index names."""

from __future__ import annotations

import subprocess
import sys

import pytest

from klink.cli import main as cli


def registered() -> dict[str, str]:
    """Every command each module in COMMAND_MODULES registers -> that module."""
    found: dict[str, str] = {}
    for module in cli.COMMAND_MODULES:
        parser = cli.build_parser([module])
        sub = next(a for a in parser._actions if a.dest == "command")
        for name in sub.choices:  # type: ignore[union-attr]
            found[name] = module
    return found


def test_index_names_every_command_and_its_module() -> None:
    assert {name: module for name, (module, _) in cli.COMMANDS.items()} == registered()


def test_top_level_help_imports_no_argparse() -> None:
    code = (
        "import sys; from klink.cli.main import main; main(['--help']); "
        "sys.stderr.write(str('argparse' in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stderr == "False"
    for name in cli.COMMANDS:
        assert f"  {name} " in result.stdout


def test_no_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: klink" in capsys.readouterr().err


def test_unknown_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["nosuchcommand"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
