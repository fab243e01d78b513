"""Builds from real git repositories and uploads, through a real server on loopback."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
from pathlib import Path

import pytest

from tests.build.conftest import (
    PACK,
    StartServer,
    commit_files,
    git,
    make_source_repo,
    put_app,
    stream,
)

pytestmark = pytest.mark.slow


def _member(data: bytes, name: str) -> str:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read().decode()


def test_build_streams_output_and_numbers_versions(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server()
    repo = make_source_repo(tmp_path / "src", {"app.txt": "one\n"})
    with server.client() as http:
        put_app(http, "search", srcRepo=str(repo), buildCommand=PACK, version="3.14")
        lines, final = stream(http, "POST", "/build/builds/search")
        assert "building search 3.14.1" in lines
        assert final["result"]["version"] == "3.14.1"
        assert final["result"]["commit"] == git(repo, "rev-parse", "HEAD")
        commit_files(repo, {"app.txt": "two\n"}, "second")
        _, final2 = stream(http, "POST", "/build/builds/search")
        assert final2["result"]["version"] == "3.14.2"

        listed = http.get("/build/artifacts/search").json()["artifacts"]
        assert [a["version"] for a in listed] == ["3.14.2", "3.14.1"]
        file = http.get("/build/artifacts/search/3.14.1/file")
        assert file.headers["x-checksum-sha256"] == hashlib.sha256(file.content).hexdigest()
        assert file.headers["x-checksum-sha256"] == final["result"]["sha256"]
        assert _member(file.content, "app.txt") == "one\n"
        assert _member(http.get("/build/artifacts/search/3.14.2/file").content, "app.txt") == (
            "two\n"
        )


def test_build_at_ref_and_version_written_by_the_build(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server()
    repo = make_source_repo(tmp_path / "src", {"app.txt": "old\n"})
    git(repo, "tag", "v1")
    commit_files(repo, {"app.txt": "new\n"}, "newer")
    command = PACK + " && echo 7.7.7-rc1 > dist/VERSION"
    with server.client() as http:
        put_app(http, "search", srcRepo=str(repo), buildCommand=command)
        _, final = stream(http, "POST", "/build/builds/search", json={"ref": "v1"})
        assert final["result"]["version"] == "7.7.7-rc1"
        content = http.get("/build/artifacts/search/7.7.7-rc1/file").content
        assert _member(content, "app.txt") == "old\n"
        # The same version again is refused: versions are never overwritten.
        _, again = stream(http, "POST", "/build/builds/search", json={"ref": "v1"})
        assert again["error"]["code"] == "conflict"


def test_default_version_and_failed_builds_still_use_up_numbers(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server()
    repo = make_source_repo(tmp_path / "src", {"app.txt": "x\n"})
    with server.client() as http:
        put_app(http, "search", srcRepo=str(repo), buildCommand="echo broken >&2; exit 3")
        lines, final = stream(http, "POST", "/build/builds/search")
        assert "broken" in lines
        assert final["error"]["code"] == "command_failed"
        assert "exit code 3" in final["error"]["message"]
        assert "broken" in final["error"]["output"]
        assert http.get("/build/artifacts/search").json() == {"artifacts": []}
        http.put("/metadata/applications/search/buildCommand", json={"value": PACK})
        _, final = stream(http, "POST", "/build/builds/search")
        assert final["result"]["version"] == "1.0.2"


def test_build_without_artifact_or_bad_ref_fails_cleanly(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server()
    repo = make_source_repo(tmp_path / "src", {"app.txt": "x\n"})
    with server.client() as http:
        put_app(http, "search", srcRepo=str(repo), buildCommand="true")
        _, final = stream(http, "POST", "/build/builds/search")
        assert "dist/artifact.tar.gz" in final["error"]["message"]
        _, final = stream(http, "POST", "/build/builds/search", json={"ref": "nope"})
        assert final["error"]["code"] == "command_failed"
        assert "git checkout nope" in final["error"]["message"]
        bad = http.post("/build/builds/search", json={"ref": "--upload-pack=x"})
        assert bad.status_code == 400
        assert bad.json()["error"]["field"] == "ref"
        put_app(http, "nosrc", buildCommand="true")
        missing = http.post("/build/builds/nosrc")
        assert missing.status_code == 400
        assert missing.json()["error"]["field"] == "srcRepo"
        assert http.post("/build/builds/ghost").status_code == 404
    work = server.runtime.settings.home / "build" / "work"
    assert list(work.iterdir()) == []


def test_build_timeout_kills_the_whole_process_group(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server(KLINK_BUILD_TIMEOUT="1")
    pid_file = tmp_path / "sleeper.pid"
    repo = make_source_repo(tmp_path / "src", {"app.txt": "x\n"})
    command = f"sleep 60 & echo $! > {pid_file}; echo started; wait"
    with server.client() as http:
        put_app(http, "search", srcRepo=str(repo), buildCommand=command)
        started = time.monotonic()
        lines, final = stream(http, "POST", "/build/builds/search")
        assert time.monotonic() - started < 20
    assert "started" in lines
    assert final["error"]["code"] == "timeout"
    sleeper = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(sleeper)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_upload_verifies_checksum_and_never_overwrites(start_server: StartServer) -> None:
    server = start_server()
    data = os.urandom(3 * (1 << 20) + 17)
    digest = hashlib.sha256(data).hexdigest()
    with server.client() as http:
        put_app(http, "search")
        no_sum = http.put("/build/artifacts/search/2.0.1", content=data)
        assert no_sum.status_code == 400
        assert no_sum.json()["error"]["field"] == "sha256"
        wrong = http.put(
            "/build/artifacts/search/2.0.1",
            content=data,
            headers={"X-Checksum-Sha256": hashlib.sha256(b"other").hexdigest()},
        )
        assert wrong.status_code == 400
        assert wrong.json()["error"]["field"] == "sha256"
        assert http.get("/build/artifacts/search").json() == {"artifacts": []}
        assert http.get("/build/artifacts/search/2.0.1").status_code == 404

        def body() -> object:
            for start in range(0, len(data), 65536):
                yield data[start : start + 65536]

        ok = http.put(f"/build/artifacts/search/2.0.1?sha256={digest}", content=body())
        assert ok.status_code == 201, ok.text
        assert ok.json()["sha256"] == digest
        assert ok.json()["size"] == len(data)
        again = http.put(
            "/build/artifacts/search/2.0.1", content=b"x", headers={"X-Checksum-Sha256": digest}
        )
        assert again.status_code == 409
        assert http.get("/build/artifacts/search/2.0.1/file").content == data
        bad_version = http.put(
            "/build/artifacts/search/..bad", content=b"x", headers={"X-Checksum-Sha256": digest}
        )
        assert bad_version.status_code == 400
        assert bad_version.json()["error"]["field"] == "version"
        ghost = http.put(
            "/build/artifacts/ghost/1.0.1", content=b"x", headers={"X-Checksum-Sha256": digest}
        )
        assert ghost.status_code == 404
    staging = server.runtime.settings.home / "artifacts" / ".staging"
    assert not staging.exists() or list(staging.iterdir()) == []


def test_build_output_arrives_while_the_build_runs(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server()
    release = tmp_path / "release"
    repo = make_source_repo(tmp_path / "src", {"app.txt": "x\n"})
    # The build prints a line, then waits (bounded) for the test to let it finish.
    command = (
        f"echo first line; i=0; while [ ! -e {release} ]; do "
        "i=$((i+1)); [ $i -lt 400 ] || exit 9; sleep 0.05; done; " + PACK
    )
    with server.client() as http:
        put_app(http, "search", srcRepo=str(repo), buildCommand=command)
        with http.stream("POST", "/build/builds/search", timeout=60) as response:
            lines = response.iter_lines()
            seen = []
            for line in lines:
                seen.append(line)
                if "first line" in line:
                    break
            # The build is still blocked: the line came live, not at the end.
            assert not release.exists()
            assert http.get("/build/artifacts/search").json() == {"artifacts": []}
            release.touch()
            rest = list(lines)
    assert '"result"' in rest[-1]


def test_credentials_in_the_source_url_never_reach_the_output(start_server: StartServer) -> None:
    server = start_server()
    secret = "s3cr3tT0ken"
    # Nothing listens on port 1 of loopback: the clone fails, and says so.
    src = f"http://builder:{secret}@127.0.0.1:1/search.git"
    with server.client() as http:
        put_app(http, "search", srcRepo=src, buildCommand=PACK)
        lines, final = stream(http, "POST", "/build/builds/search")
    assert final["error"]["code"] == "command_failed"
    assert "git clone" in final["error"]["message"]
    text = "\n".join([*lines, final["error"]["message"], final["error"].get("output", "")])
    assert "127.0.0.1" in text
    assert secret not in text
    assert "<sensitive>" in text
