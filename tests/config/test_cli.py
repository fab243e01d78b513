"""``klink config …`` against a live server: clone with credentials, push, log, show, diff."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from klink.cli.main import main
from tests.config.conftest import ConfigWorld, git_env

pytestmark = pytest.mark.slow


def run(capsys: pytest.CaptureFixture[str], world: ConfigWorld, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--server", world.server.url, "--token", world.server.token])
    out, err = capsys.readouterr()
    return code, out, err


def test_clone_push_log_show_diff(
    capsys: pytest.CaptureFixture[str], world: ConfigWorld, tmp_path: Path
) -> None:
    world.env("poke")
    world.app("search")
    work = tmp_path / "cfg"
    code, out, err = run(
        capsys, world, "config", "clone", "search", "poke", "--dir", str(work), "--json"
    )
    assert code == 0, err
    assert json.loads(out)[0]["path"] == str(work)
    remote = subprocess.run(
        ["git", "config", "--get", "remote.origin.url"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
        env=git_env(),
    ).stdout.strip()
    assert remote == world.url("search", "poke")
    assert world.server.token not in (work / ".git" / "config").read_text()

    params = json.loads((work / "deployment-params.json").read_text())
    params["desiredCapacity"] = 1
    params["defaultCooldown"] = 77
    (work / "deployment-params.json").write_text(json.dumps(params, indent=2) + "\n")
    env = git_env(KLINK_TOKEN=world.server.token, KLINK_SERVER=world.server.url)
    subprocess.run(["git", "commit", "-qam", "Cooldown 77"], cwd=work, check=True, env=env)
    # Plain git push: the 401 challenge is answered by `klink config credential`.
    pushed = subprocess.run(
        ["git", "push", "-q", "origin", "HEAD"], cwd=work, capture_output=True, text=True, env=env
    )
    assert pushed.returncode == 0, pushed.stderr

    code, out, _ = run(capsys, world, "config", "log", "search", "poke", "--json")
    commits = json.loads(out)["commits"]
    assert [c["message"] for c in commits] == [
        "Cooldown 77",
        "Initial configuration of search in poke",
    ]
    code, out, _ = run(capsys, world, "config", "log", "search", "poke")
    assert out.splitlines()[0].split() == ["COMMIT", "DATE", "AUTHOR", "MESSAGE"]
    assert "Cooldown 77" in out

    code, out, _ = run(
        capsys,
        world,
        "config",
        "show",
        "search",
        "poke",
        "deployment-params.json",
        "--at",
        "HEAD~1",
        "--json",
    )
    assert json.loads(out)["hash"] == commits[1]["hash"]
    assert "defaultCooldown" not in json.loads(out)["data"]
    code, out, _ = run(capsys, world, "config", "show", "search", "poke", "deployment-params.json")
    assert json.loads(out)["defaultCooldown"] == 77

    code, out, _ = run(capsys, world, "config", "diff", "search", "poke", "HEAD~1")
    assert code == 0
    assert '+  "defaultCooldown": 77' in out
    code, out, _ = run(
        capsys, world, "config", "diff", "search", "poke", "HEAD~1", "HEAD", "--json"
    )
    assert json.loads(out)["files"][0]["after"]["defaultCooldown"] == 77


def test_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], world: ConfigWorld, tmp_path: Path
) -> None:
    world.env("poke")
    world.app("search")
    code, _, err = run(
        capsys, world, "config", "show", "search", "poke", "launch-data.json", "--at=--output=x"
    )
    assert code == 1
    assert err.startswith("klink: ")
    assert len(err.strip().splitlines()) == 1
    assert "[at]" in err or "at " in err
    code, _, err = run(capsys, world, "config", "log", "search", "prod")
    assert code == 1
    assert "no config repository search-prod" in err
    with pytest.raises(SystemExit) as usage:
        run(capsys, world, "config", "show", "search", "poke", "secrets.json")
    assert usage.value.code == 2


def test_validate(capsys: pytest.CaptureFixture[str], world: ConfigWorld, tmp_path: Path) -> None:
    good = tmp_path / "deployment-params.json"
    good.write_text('{"min": 1, "max": 2}')
    code, out, _ = run(capsys, world, "config", "validate", str(good), "--provider", "local")
    assert code == 0
    assert "valid" in out
    code, _, err = run(capsys, world, "config", "validate", str(good))  # aws: instanceType
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "instanceType: is required on aws" in err
    other = tmp_path / "params.json"
    other.write_text('{"min": 3}')
    code, out, _ = run(
        capsys,
        world,
        "config",
        "validate",
        str(other),
        "--as",
        "deployment-params.json",
        "--provider",
        "local",
        "--json",
    )
    assert code == 1
    assert [p["field"] for p in json.loads(out)["problems"]] == ["min", "desiredCapacity"]
    code, _, err = run(capsys, world, "config", "validate", str(other))
    assert code == 2
    assert "--as" in err


def test_clone_every_environment_of_an_app(
    capsys: pytest.CaptureFixture[str],
    world: ConfigWorld,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world.env("poke")
    world.env("prod")
    world.app("search")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, world, "config", "clone", "search")
    assert code == 0, err
    assert out.splitlines() == [
        "cloned search-poke into search-poke",
        "cloned search-prod into search-prod",
    ]
    assert (tmp_path / "search-prod" / "deployment-params.json").is_file()
    code, _, err = run(capsys, world, "config", "clone", "search", "poke")
    assert code == 1
    assert err == "klink: search-poke exists\n"
