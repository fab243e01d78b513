"""The CLI's main() against a live server on loopback: happy path, errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from klink.cli.main import main
from tests.conftest import LiveServer


def run(capsys: pytest.CaptureFixture[str], server: LiveServer, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--server", server.url, "--token", server.token])
    out, err = capsys.readouterr()
    return code, out, err


def test_apps_envs_props_happy_path(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    assert run(capsys, live_server, "create-env", "dev", "--provider", "local")[0] == 0
    code, out, _ = run(
        capsys,
        live_server,
        "create-app",
        "search",
        "--contact",
        "s@x.io",
        "--set",
        "tier=1",
        "--json",
    )
    assert code == 0
    assert json.loads(out)["metadata"] == {"contact": "s@x.io", "tier": 1}
    assert run(capsys, live_server, "prop", "set", "search", "owner", '{"team": "s"}')[0] == 0
    assert run(capsys, live_server, "prop", "set", "search", "note", "plain words")[0] == 0
    code, out, _ = run(capsys, live_server, "prop", "get", "search", "owner", "--json")
    assert json.loads(out) == {"key": "owner", "value": {"team": "s"}}
    code, out, _ = run(capsys, live_server, "prop", "get", "search", "note")
    assert out == "plain words\n"
    code, out, _ = run(capsys, live_server, "apps")
    assert code == 0
    assert out.splitlines()[0].split() == ["NAME", "CONTACT", "BLOCKED"]
    assert "search" in out
    code, out, _ = run(capsys, live_server, "envs", "--json")
    assert [e["name"] for e in json.loads(out)] == ["dev"]
    code, out, _ = run(capsys, live_server, "info", "search", "--json")
    assert json.loads(out)["metadata"]["owner"] == {"team": "s"}
    assert run(capsys, live_server, "prop", "delete", "search", "note")[0] == 0
    code, _, err = run(capsys, live_server, "prop", "get", "search", "note")
    assert code == 1
    assert err.startswith("klink: ")
    assert len(err.strip().splitlines()) == 1


def test_errors_are_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    code, out, err = run(capsys, live_server, "create-app", "Bad-Name", "--contact", "a@b.c")
    assert code == 1
    assert out == ""
    assert "must match" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, live_server, "info", "nosuch")
    assert code == 1
    assert "no application named 'nosuch'" in err
    run(capsys, live_server, "create-app", "search", "--contact", "a@b.c")
    code, _, err = run(capsys, live_server, "create-app", "search", "--contact", "a@b.c")
    assert (code, "exists" in err) == (1, True)


def test_wrong_role_and_unreachable_server(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    code, out, _ = run(
        capsys, live_server, "token", "create", "--name", "viewer", "--role", "reader", "--json"
    )
    reader = json.loads(out)["token"]
    code = main(
        ["create-app", "x", "--contact", "a@b.c", "--server", live_server.url, "--token", reader]
    )
    _, err = capsys.readouterr()
    assert code == 1
    assert "HTTP 403" in err
    code = main(["apps", "--server", "http://127.0.0.1:9", "--token", reader])
    _, err = capsys.readouterr()
    assert code == 1
    assert "cannot reach the Klink server" in err


def test_bad_usage_exits_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "klink.cli.main", "create-app"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "required" in result.stderr
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "klink.cli.main",
            "apps",
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "t",
            "--nope",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2


def test_local_admin_token_is_used_automatically(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLINK_HOME", str(live_server.runtime.settings.home))
    monkeypatch.setenv("KLINK_SERVER", live_server.url)
    monkeypatch.delenv("KLINK_TOKEN", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(live_server.runtime.settings.home / "nocfg"))
    assert main(["apps", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_serve_with_a_bad_setting_is_one_line_naming_the_variable(tmp_path: object) -> None:
    import os

    env = {**os.environ, "KLINK_HOME": str(tmp_path), "KLINK_LISTEN": "nowhere"}
    result = subprocess.run(
        [sys.executable, "-m", "klink.cli.main", "serve"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "KLINK_LISTEN" in result.stderr
    assert "Traceback" not in result.stderr
