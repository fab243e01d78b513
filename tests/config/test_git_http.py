"""Git over HTTP through a live server: create, clone, push, read back; bad pushes refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from klink.config.client import ConfigClient
from klink.errors import InvalidInput, NotFound
from tests.config.conftest import ConfigWorld

pytestmark = pytest.mark.slow


def _setup(world: ConfigWorld) -> None:
    world.env("poke", provider="local")
    world.env("prod", provider="aws")
    world.app("search")


def _clone(world: ConfigWorld, tmp_path: Path, env: str = "poke") -> Path:
    work = tmp_path / f"search-{env}"
    world.git().run(["clone", "--quiet", world.url("search", env), str(work)])
    return work


def _edit_params(work: Path, **changes: object) -> None:
    path = work / "deployment-params.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data, indent=2) + "\n")


def test_creating_an_app_creates_its_repos_with_initial_files(world: ConfigWorld) -> None:
    _setup(world)
    with world.server.client() as http:
        repos = http.get("/config/repos/search").json()["repos"]
        assert [(r["app"], r["env"]) for r in repos] == [("search", "poke"), ("search", "prod")]
        assert repos[0]["cloneUrl"] == world.url("search", "poke")
        log = http.get("/config/repos/search/poke/commits").json()["commits"]
        assert len(log) == 1
        assert log[0]["author"] == "Klink"
        params = http.get("/config/repos/search/prod/files/deployment-params.json").json()
        assert params["hash"] != log[0]["hash"]  # another repository, another commit
        assert params["data"]["instanceType"]  # aws needs one, so the default has one
        local = http.get("/config/repos/search/poke/files/deployment-params.json").json()
        assert "instanceType" not in local["data"]
        props = http.get("/config/repos/search/poke/files/application-properties.json").json()
        assert props["data"] == {"service.port": 8080, "healthcheck.path": "/healthcheck"}
        launch = http.get("/config/repos/search/poke/files/launch-data.json").json()
        assert launch["data"] == []
        # Creating again is a no-op that keeps the history.
        again = http.post("/config/repos/search/poke")
        assert again.status_code == 200
        assert again.json()["created"] is False
        assert len(http.get("/config/repos/search/poke/commits").json()["commits"]) == 1


def test_defaults_templates_are_rendered(world: ConfigWorld) -> None:
    props = {"service.port": 9000, "service.name": "{{app}} in {{env}}"}
    world.env(
        "qa", defaults={"application-properties.json": props, "launch-data.json": ["echo {{app}}"]}
    )
    world.app("search")
    with world.server.client() as http:
        body = http.get("/config/repos/search/qa/files/application-properties.json").json()
        assert body["data"] == {"service.port": 9000, "service.name": "search in qa"}
        launch = http.get("/config/repos/search/qa/files/launch-data.json").json()
        assert launch["data"] == ["echo search"]


def test_clone_edit_push_read_back_and_diff(world: ConfigWorld, tmp_path: Path) -> None:
    _setup(world)
    git = world.git()
    work = _clone(world, tmp_path)
    first = git.run(["rev-parse", "HEAD"], work).stdout.strip()
    _edit_params(work, desiredCapacity=2, max=3)
    git.run(["commit", "--quiet", "-am", "Two instances"], work)
    git.run(["push", "--quiet", "origin", "HEAD"], work)
    second = git.run(["rev-parse", "HEAD"], work).stdout.strip()

    with world.server.client() as http:
        base = "/config/repos/search/poke"
        head = http.get(f"{base}/files/deployment-params.json").json()
        assert head["hash"] == second
        assert head["data"]["desiredCapacity"] == 2
        prev = http.get(f"{base}/files/deployment-params.json", params={"at": "HEAD~1"}).json()
        assert prev["hash"] == first
        assert prev["data"]["desiredCapacity"] == 1
        by_hash = http.get(f"{base}/files/deployment-params.json", params={"at": first}).json()
        assert by_hash == prev
        short = http.get(f"{base}/files/deployment-params.json", params={"at": first[:8]})
        assert short.json()["hash"] == first
        log = http.get(f"{base}/commits").json()["commits"]
        assert [c["hash"] for c in log] == [second, first]
        assert log[0]["author"] == "Ada Tester"
        assert log[0]["message"] == "Two instances"

        diff = http.get(f"{base}/diff", params={"from": "HEAD~1", "to": "HEAD"}).json()
        assert (diff["from"], diff["to"]) == (first, second)
        [change] = diff["files"]
        assert change["file"] == "deployment-params.json"
        assert change["status"] == "modified"
        assert '-  "desiredCapacity": 1' in change["diff"]
        assert '+  "desiredCapacity": 2' in change["diff"]
        assert change["before"]["desiredCapacity"] == 1
        assert change["after"]["max"] == 3

    # And a second clone sees the pushed commit (pull works).
    git.run(["pull", "--quiet"], work)
    other = tmp_path / "other"
    git.run(["clone", "--quiet", world.url("search", "poke"), str(other)])
    assert json.loads((other / "deployment-params.json").read_text())["desiredCapacity"] == 2


def test_plain_git_answers_the_401_challenge_with_its_credential_helper(
    world: ConfigWorld, tmp_path: Path
) -> None:
    _setup(world)
    store = tmp_path / "credentials"
    host = world.server.url.removeprefix("http://")
    store.write_text(f"http://klink:{world.server.token}@{host}\n")
    store.chmod(0o600)
    helper = {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "credential.helper",
        "GIT_CONFIG_VALUE_0": f"store --file={store}",
    }
    work = tmp_path / "work"
    world.git(token=None).run(
        ["clone", "--quiet", world.url("search", "poke"), str(work)], **helper
    )
    assert (work / "launch-data.json").exists()
    # Without any credentials git gets the 401 and gives up (no prompt in tests).
    refused = world.git(token=None).run(
        ["clone", "--quiet", world.url("search", "poke"), str(tmp_path / "nope")], check=False
    )
    assert refused.returncode != 0
    with httpx.Client() as http:
        response = http.get(f"{world.url('search', 'poke')}/info/refs?service=git-upload-pack")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")


def test_a_push_of_bad_params_is_rejected_naming_file_and_field(
    world: ConfigWorld, tmp_path: Path
) -> None:
    _setup(world)
    git = world.git()
    work = _clone(world, tmp_path, "prod")
    before = git.run(["ls-remote", world.url("search", "prod"), "refs/heads/main"]).stdout
    _edit_params(work, min=3, healthCheckType="TCP")
    data = json.loads((work / "deployment-params.json").read_text())
    del data["instanceType"]
    (work / "deployment-params.json").write_text(json.dumps(data))
    (work / "launch-data.json").write_text('{"not": "a list"}')
    git.run(["commit", "--quiet", "-am", "Broken"], work)
    pushed = git.run(["push", "origin", "HEAD"], work, check=False)
    assert pushed.returncode != 0
    assert "pre-receive hook declined" in pushed.stderr
    assert "deployment-params.json: healthCheckType" in pushed.stderr
    assert "deployment-params.json: instanceType: is required on aws" in pushed.stderr
    assert "launch-data.json: launch-data must be a JSON array" in pushed.stderr
    after = git.run(["ls-remote", world.url("search", "prod"), "refs/heads/main"]).stdout
    assert after == before
    with world.server.client() as http:
        assert len(http.get("/config/repos/search/prod/commits").json()["commits"]) == 1

    # Not JSON at all is named too.
    (work / "application-properties.json").write_text("{oops")
    git.run(["commit", "--quiet", "-am", "Worse"], work)
    pushed = git.run(["push", "origin", "HEAD"], work, check=False)
    assert "application-properties.json: not valid JSON" in pushed.stderr
    # Removing a required file is refused as well.
    git.run(["reset", "--quiet", "--hard", "origin/main"], work)
    git.run(["rm", "--quiet", "launch-data.json"], work)
    git.run(["commit", "--quiet", "-m", "Gone"], work)
    pushed = git.run(["push", "origin", "HEAD"], work, check=False)
    assert "launch-data.json: is missing (required)" in pushed.stderr
    assert git.run(["ls-remote", world.url("search", "prod"), "refs/heads/main"]).stdout == before


def test_history_cannot_be_rewritten_or_deleted(world: ConfigWorld, tmp_path: Path) -> None:
    _setup(world)
    git = world.git()
    work = _clone(world, tmp_path)
    _edit_params(work, desiredCapacity=1, defaultCooldown=30)
    git.run(["commit", "--quiet", "--amend", "-am", "Rewritten"], work)
    forced = git.run(["push", "--force", "origin", "HEAD"], work, check=False)
    assert forced.returncode != 0
    deleted = git.run(["push", "origin", ":main"], work, check=False)
    assert deleted.returncode != 0
    assert len(git.run(["ls-remote", world.url("search", "poke")]).stdout.splitlines()) == 2


@pytest.mark.parametrize("who", ["reader", "other-env-deployer", "nobody", "bad-token"])
def test_unauthorised_pushes_are_refused(world: ConfigWorld, tmp_path: Path, who: str) -> None:
    _setup(world)
    tokens = {
        "reader": world.token("r", "reader"),
        "other-env-deployer": world.token("d", "deployer", ["prod"]),
        "nobody": None,
        "bad-token": "klk_not-a-token",
    }
    work = _clone(world, tmp_path)
    git = world.git(tokens[who])
    _edit_params(work, desiredCapacity=1, defaultCooldown=42)
    git.run(["commit", "--quiet", "-am", "Sneaky"], work)
    pushed = git.run(["push", "origin", "HEAD"], work, check=False)
    assert pushed.returncode != 0
    expected = {
        "reader": "403",
        "other-env-deployer": "403",
        "nobody": "could not read Username",  # the 401 challenge, and no helper to answer it
        "bad-token": "could not read Username",  # refused with 401 too
    }[who]
    assert expected in pushed.stderr
    with world.server.client() as http:
        assert len(http.get("/config/repos/search/poke/commits").json()["commits"]) == 1


def test_a_deployer_of_the_environment_may_push(world: ConfigWorld, tmp_path: Path) -> None:
    _setup(world)
    token = world.token("poker", "deployer", ["poke"])
    work = _clone(world, tmp_path)
    git = world.git(token)
    _edit_params(work, defaultCooldown=42)
    git.run(["commit", "--quiet", "-am", "Cooler"], work)
    git.run(["push", "--quiet", "origin", "HEAD"], work)
    with world.server.client() as http:
        body = http.get("/config/repos/search/poke/files/deployment-params.json").json()
    assert body["data"]["defaultCooldown"] == 42


def test_a_large_push_streams_through(world: ConfigWorld, tmp_path: Path) -> None:
    # Bigger than git's 1 MiB http.postBuffer: git sends it chunked, without Content-Length.
    _setup(world)
    git = world.git()
    work = _clone(world, tmp_path)
    (work / "notes.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    git.run(["add", "notes.bin"], work)
    git.run(["commit", "--quiet", "-m", "Notes"], work)
    git.run(["push", "--quiet", "origin", "HEAD"], work)
    copy = tmp_path / "copy"
    git.run(["clone", "--quiet", world.url("search", "poke"), str(copy)])
    assert (copy / "notes.bin").read_bytes() == (work / "notes.bin").read_bytes()


def test_config_client_for_other_services(world: ConfigWorld) -> None:
    _setup(world)
    config = ConfigClient(world.server.runtime.http("config"))
    head = config.resolve("search", "poke", "HEAD")
    assert len(head) == 40
    assert config.file("search", "poke", "launch-data.json", head) == (head, [])
    commit, props = config.file("search", "poke", "application-properties.json")
    assert commit == head
    assert props["service.port"] == 8080
    assert config.create_repo("search", "poke")["created"] is False
    assert [r["env"] for r in config.repos("search")] == ["poke", "prod"]
    with pytest.raises(NotFound):
        config.resolve("search", "poke", "HEAD~5")
    with pytest.raises(InvalidInput) as caught:
        config.file("search", "poke", "launch-data.json", "--help")
    assert caught.value.field == "at"
