"""The cloud-config subset applied at launch: write_files, profile.d exports, runcmd."""

from __future__ import annotations

import base64
import gzip
import os
from pathlib import Path

import pytest

from klink.errors import InvalidInput, ProviderError
from klink.providers.local import cloudinit


def test_write_files_reroots_decodes_and_sets_permissions(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    original = root / "etc" / "app.properties"
    original.write_text("old\n")
    original.chmod(0o444)
    linked = tmp_path / "image-copy"
    os.link(original, linked)  # as an instance root shares inodes with its image
    doc = cloudinit.parse(
        "#cloud-config\n"
        "write_files:\n"
        "- path: /etc/app.properties\n"
        "  content: 'port=1'\n"
        "- path: /opt/bin/run\n"
        f"  content: {base64.b64encode(b'#!/bin/sh').decode()}\n"
        "  encoding: b64\n"
        "  permissions: '0755'\n"
        "- path: /etc/z.gz\n"
        f"  content: {base64.b64encode(gzip.compress(b'zipped')).decode()}\n"
        "  encoding: gz+b64\n"
        "- path: /etc/app.properties\n"
        '  content: "\\nmore=2"\n'
        "  append: true\n"
    )
    cloudinit.write_files(root, doc["write_files"])
    assert original.read_text() == "port=1\nmore=2"
    assert linked.read_text() == "old\n"  # replaced, not written in place
    assert (root / "opt" / "bin" / "run").read_bytes() == b"#!/bin/sh"
    assert (root / "opt" / "bin" / "run").stat().st_mode & 0o777 == 0o755
    assert (root / "etc" / "z.gz").read_bytes() == b"zipped"
    assert not list(root.rglob("*.klink-new"))


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("#!/bin/sh\necho hi\n", "user_data"),
        ("#cloud-config\n- a\n", "user_data"),
        ("#cloud-config\nwrite_files: [{path: '../escape', content: x}]\n", "write_files"),
        ("#cloud-config\nwrite_files: [{content: x}]\n", "write_files"),
        ("#cloud-config\nwrite_files: [{path: /a, content: x, encoding: rot13}]\n", "write_files"),
    ],
)
def test_bad_user_data_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        cloudinit.write_files(tmp_path, cloudinit.parse(text).get("write_files"))
    assert caught.value.field == field
    assert not (tmp_path.parent / "escape").exists()


def test_exports_and_runcmd(tmp_path: Path) -> None:
    (tmp_path / "etc" / "profile.d").mkdir(parents=True)
    (tmp_path / "etc" / "profile.d" / "a.sh").write_text(
        "# comment\nexport A=1\nexport B='two words'\nFOO=not-exported\nexport A=3\n"
    )
    (tmp_path / "etc" / "profile.d" / "b.sh").write_text('export C="$HOME"\n')
    env = cloudinit.exports(tmp_path)
    assert env == {"A": "3", "B": "two words", "C": "$HOME"}
    path = {"PATH": os.environ["PATH"]}
    with open(tmp_path / "log", "ab") as log:
        commands = ["echo $B > out", ["sh", "-c", "echo argv; echo err >&2"]]
        cloudinit.run_commands(tmp_path, commands, {**path, **env}, log)
        with pytest.raises(ProviderError):
            cloudinit.run_commands(tmp_path, ["exit 3", "touch never"], path, log)
    assert (tmp_path / "out").read_text() == "two words\n"
    assert (tmp_path / "log").read_text() == "argv\nerr\n"
    assert not (tmp_path / "never").exists()


def test_the_orchestrators_user_data_applies(tmp_path: Path) -> None:
    from klink.deploy.userdata import render

    text = render(
        app="hello",
        env="dev",
        group="hello-dev-v001",
        version="1.0",
        config_commit="abc",
        region="local",
        properties={"service.port": 8080},
        launch_data=["echo launched > launched"],
    )
    doc = cloudinit.parse(text)
    cloudinit.write_files(tmp_path, doc["write_files"])
    env = cloudinit.exports(tmp_path)
    assert env["KLINK_APP"] == "hello"
    assert env["KLINK_GROUP"] == "hello-dev-v001"
    assert (tmp_path / "etc" / "hello.properties").read_text() == "service.port=8080\n"
    with open(tmp_path / "log", "ab") as log:
        cloudinit.run_commands(tmp_path, doc["runcmd"], {"PATH": os.environ["PATH"]}, log)
    assert (tmp_path / "launched").read_text() == "launched\n"
