"""The git boundary without a server: ref syntax, creation (twice, racing), the file registry."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from klink.config import files
from klink.config.gitcmd import check_ref
from klink.config.params import Problem
from klink.config.repos import ConfigRepos, render_template
from klink.errors import InvalidInput, NotFound

GOOD = ["HEAD", "HEAD~1", "HEAD~", "HEAD^", "HEAD~12^2", "main", "feature/x-1", "1a2b", "a" * 40]
BAD = [
    "",
    "-n",
    "--output=x",
    "../x",
    "a..b",
    "HEAD:f",
    "main@{1}",
    "x y",
    "x\x00",
    "x\n",
    "a/.b",
    "a//b",
    "a/",
    "a.lock",
    "$(id)",
    "`id`",
    "~1",
    "HEAD~1234567",
    "é",
]


@pytest.mark.parametrize("ref", GOOD)
def test_refs_accepted(ref: str) -> None:
    assert check_ref(ref) == ref


@pytest.mark.parametrize("ref", BAD)
def test_refs_refused(ref: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_ref(ref, "from")
    assert caught.value.field == "from"


FILES = {
    "application-properties.json": b'{"service.port": 8080}\n',
    "deployment-params.json": b"{}\n",
    "launch-data.json": b"[]\n",
}


def test_create_twice_keeps_one_history(tmp_path: Path) -> None:
    repos = ConfigRepos(tmp_path / "config")
    assert repos.create("search", "poke", FILES, provider="local") is True
    head = repos.resolve("search", "poke", "HEAD")
    assert repos.create("search", "poke", FILES, provider="aws") is False
    assert repos.resolve("search", "poke", "HEAD") == head
    assert repos.all() == [("search", "poke")]
    commits, cursor = repos.log("search", "poke", limit=10)
    assert [c.author for c in commits] == ["Klink"]
    assert cursor is None
    assert repos.read("search", "poke", head, "launch-data.json") == (head, b"[]\n")
    assert repos.read("search", "poke", "HEAD", "missing.json") == (head, None)
    with pytest.raises(NotFound):
        repos.resolve("search", "prod", "HEAD")
    with pytest.raises(NotFound):
        repos.resolve("search", "poke", "HEAD~1")
    with pytest.raises(NotFound):
        repos.read("search", "poke", "f" * 40, "launch-data.json")
    repos.close()
    # A closed reader is replaced on the next read.
    assert repos.read("search", "poke", "HEAD", "launch-data.json") == (head, b"[]\n")
    repos.close()


def test_racing_creations_leave_one_repository(tmp_path: Path) -> None:
    repos = ConfigRepos(tmp_path / "config")
    results: list[bool] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(repos.create("search", "poke", FILES, provider="local"))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    assert len(repos.log("search", "poke", limit=10)[0]) == 1
    assert [p.name for p in (tmp_path / "config").iterdir()] == ["search-poke.git"]
    repos.close()


def test_render_template_substitutes_app_and_env_everywhere() -> None:
    template = {"{{app}}.name": ["{{env}}", 1, {"k": "{{app}}-{{env}}"}]}
    assert render_template(template, "search", "poke") == {
        "search.name": ["poke", 1, {"k": "search-poke"}]
    }


def _yaml_problems(data: object, provider: str) -> list[Problem]:
    if not isinstance(data, dict) or "resources" not in data:
        return [Problem("resources", f"is required ({provider})")]
    return []


def test_an_optional_file_registered_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = files.FileSpec(
        "infrastructure.yaml", f"{__name__}:_yaml_problems", parse=files.parse_yaml
    )
    monkeypatch.setitem(files.FILES, "infrastructure.yaml", spec)
    base = {name: FILES[name] for name in FILES}
    assert files.tree_problems(base, "local") == []  # optional: absent is fine
    bad = files.tree_problems({**base, "infrastructure.yaml": b"other: 1\n"}, "local")
    assert [(name, p.field, p.message) for name, p in bad] == [
        ("infrastructure.yaml", "resources", "is required (local)")
    ]
    broken = files.tree_problems({**base, "infrastructure.yaml": b"a: [\n"}, "local")
    assert broken[0][1].message.startswith("not valid YAML")
    assert files.tree_problems({**base, "infrastructure.yaml": b"resources: {}\n"}, "local") == []
