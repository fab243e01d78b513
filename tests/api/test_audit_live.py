"""The audit log through a live server: git pushes name the token that pushed, not only the
author git declares; ``klink audit`` reads the log as a person and as a script would."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from klink.cli.audit import since_param
from klink.cli.main import main
from tests.config.conftest import ConfigWorld, Git
from tests.conftest import LiveServer


def audit_page(server: LiveServer, **params: Any) -> list[dict[str, Any]]:
    with server.client() as http:
        answer = http.get("/auth/audit", params=params)
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()["entries"]
    return entries


@pytest.mark.slow
def test_a_push_is_recorded_with_the_token_and_what_it_moved(
    live_server: LiveServer, tmp_path: Path
) -> None:
    world = ConfigWorld(live_server)
    world.env("poke", provider="local")
    world.app("search")
    with live_server.client() as http:
        secret = http.post(
            "/auth/tokens", json={"name": "pusher", "role": "deployer", "envs": ["poke"]}
        ).json()["token"]
    git = Git(secret)
    work = tmp_path / "search-poke"
    identity = {"GIT_AUTHOR_NAME": "Mallory", "GIT_AUTHOR_EMAIL": "boss@example.com"}
    git.run(["clone", "--quiet", f"{live_server.url}/config/git/search-poke.git", str(work)])
    before = git.run(["rev-parse", "HEAD"], work).stdout.strip()
    (work / "launch-data.json").write_text('["echo hello"]\n')
    git.run(["commit", "--quiet", "-am", "say hello"], work, **identity)
    git.run(["push", "--quiet", "origin", "HEAD"], work)
    after = git.run(["rev-parse", "HEAD"], work).stdout.strip()

    (work / "deployment-params.json").write_text("not json\n")
    git.run(["commit", "--quiet", "-am", "break it"], work, **identity)
    refused = git.run(["push", "--quiet", "origin", "HEAD"], work, check=False)
    assert refused.returncode != 0

    pushes = audit_page(live_server, action="git push")
    assert [(p["actor"], p["target"], p["outcome"]) for p in pushes] == [
        ("pusher", "/config/repos/search/poke", 400),
        ("pusher", "/config/repos/search/poke", 200),
    ]
    landed = pushes[1]["detail"]
    assert landed["refs"] == {"refs/heads/main": {"from": before, "to": after}}
    assert landed["authors"] == ["Mallory <boss@example.com>"]
    assert pushes[0]["detail"]["refs"] == {}
    # Clones and fetches change nothing: not in the log.
    assert not [e for e in audit_page(live_server) if "upload-pack" in e["action"]]


def run(capsys: pytest.CaptureFixture[str], server: LiveServer, *argv: str) -> tuple[int, str]:
    code = main([*argv, "--server", server.url, "--token", server.token])
    out, err = capsys.readouterr()
    assert code != 0 or err == ""
    return code, out + err


def test_klink_audit_lists_filters_and_pages(
    live_server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("alpha", "beta", "gamma"):
        code, _ = run(capsys, live_server, "create-app", name, "--contact", "t@example.com")
        assert code == 0
    for name in ("alpha", "beta", "gamma"):
        code, _ = run(capsys, live_server, "prop", "set", name, "tier", "gold")
        assert code == 0
    code, out = run(capsys, live_server, "audit")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["AT", "ACTOR", "ON", "BEHALF", "OF", "ACTION", "TARGET", "OUTCOME"]
    assert "admin" in lines[1]
    assert "PUT /metadata/applications/{name}/{key}" in lines[1]
    assert lines[1].split()[-2:] == ["/metadata/applications/gamma/tier", "200"]
    assert any("POST /metadata/applications" in line and "201" in line for line in lines)

    code, out = run(capsys, live_server, "audit", "--json", "--limit", "2")
    page = json.loads(out)
    assert [e["target"] for e in page["entries"]] == [
        "/metadata/applications/gamma/tier",
        "/metadata/applications/beta/tier",
    ]
    code, out = run(
        capsys, live_server, "audit", "--json", "--limit", "1", "--before", str(page["next"])
    )
    assert [e["target"] for e in json.loads(out)["entries"]] == [
        "/metadata/applications/alpha/tier"
    ]

    code, out = run(capsys, live_server, "audit", "--target", "/metadata/applications/beta")
    assert "/metadata/applications/beta" in out
    assert "alpha" not in out
    assert "gamma" not in out
    code, out = run(capsys, live_server, "audit", "--json", "--since", "1h")
    assert len(json.loads(out)["entries"]) == 6
    code, out = run(capsys, live_server, "audit", "--since", "soon")
    assert code == 2
    assert (
        out.strip() == "klink: --since 'soon': expected an ISO 8601 time or an age (30m, 12h, 7d)"
    )


def test_klink_audit_needs_an_admin(
    live_server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with live_server.client() as http:
        reader = http.post("/auth/tokens", json={"name": "r", "role": "reader"}).json()["token"]
    code = main(["audit", "--server", live_server.url, "--token", reader])
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "admin" in err


def test_since_ages_and_times() -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert since_param("30m", now) == (now - timedelta(minutes=30)).isoformat()
    assert since_param("7d", now) == "2026-04-24T12:00:00+00:00"
    assert since_param("2026-04-30T08:00", now) == "2026-04-30T08:00:00+00:00"
    assert since_param("2026-04-30T08:00+02:00", now) == "2026-04-30T08:00:00+02:00"
