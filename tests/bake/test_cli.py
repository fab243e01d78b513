"""``klink build``, ``bake``, ``bake-base``, ``images``, ``delete-image`` against a real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from klink.cli.main import main
from tests.bake.conftest import hello_app, put_env
from tests.build.conftest import StartServer

pytestmark = pytest.mark.slow


def test_cli_build_bake_images_with_live_output_and_json(
    start_server: StartServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_server(services=["auth", "metadata", "build", "bake"])
    opts = ["--server", server.url, "--token", server.token]
    with server.client() as http:
        put_env(http, "dev", provider="local")
        hello_app(http, tmp_path, bakeCommands=["echo baking {{version}}"])

    assert main(["build", "hello", *opts]) == 0
    out = capsys.readouterr().out
    assert "built dist/artifact.tar.gz" in out  # the build's own output, streamed
    assert "built hello version 1.0.1" in out

    assert main(["build", "hello", "--json", *opts]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["version"] == "1.0.2"
    assert "built dist/artifact.tar.gz" in captured.err  # logs go to stderr with --json

    assert main(["bake", "hello", "1.0.2", *opts]) == 1
    assert "bake-base" in capsys.readouterr().err

    assert main(["bake-base", "--provider", "local", "--json", *opts]) == 0
    base = json.loads(capsys.readouterr().out)
    assert base["target"] == "local"
    assert base["image"].startswith("img-")

    assert main(["bake", "hello", "1.0.2", "--dry-run", *opts]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["plan"]["bake_commands"] == ["echo baking 1.0.2"]

    assert main(["bake", "hello", "1.0.2", "--embargo", "prod", "--json", *opts]) == 0
    captured = capsys.readouterr()
    baked = json.loads(captured.out)
    assert set(baked) == {"image", "target"}
    assert baked["target"] == "local"
    assert "baking 1.0.2" in captured.err

    assert main(["images", "hello", "--json", *opts]) == 0
    images = json.loads(capsys.readouterr().out)
    assert [i["id"] for i in images] == [baked["image"]]
    assert images[0]["embargo"] == ["prod"]
    assert main(["images", "hello", *opts]) == 0
    assert baked["image"] in capsys.readouterr().out

    # No deploy service here: Klink cannot tell the image is unused, so it refuses.
    assert main(["delete-image", "hello", baked["image"], *opts]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "409" in err

    assert main(["bake", "hello", "7.7.7", *opts]) == 1
    err = capsys.readouterr().err
    assert err.startswith("klink: ")
    assert "Traceback" not in err

    with pytest.raises(SystemExit) as usage:
        main(["bake", "hello", *opts])
    assert usage.value.code == 2
