"""The import contracts ([tool.importlinter] in pyproject.toml) catch what they say they catch.

Each case adds modules that cross one boundary to a copy of the source tree and runs the real
``lint-imports`` on that copy with the project's own configuration: exactly the contracts the
case names break, each naming the offending import, and the others hold. Packages that do not
exist yet (chat, web, analysis) are among the cases, so a contract that names them is shown to
accept their absence and to check them once they exist, not to be switched off by them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS: dict[str, str] = {
    c["id"]: c["name"]
    for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
}


@dataclass(frozen=True)
class Case:
    files: dict[str, str]  # path under src/klink -> content (appended when the file exists)
    broken: frozenset[str]  # contract ids
    reported: tuple[str, ...] = field(default=())  # lines the report must contain


CASES: dict[str, Case] = {
    "none: the tree as it is": Case({}, frozenset()),
    "a provider imports a service's store": Case(
        {"providers/local/leak.py": "import klink.metadata.store\n"},
        frozenset({"layers"}),
        ("- klink.providers.local.leak -> klink.metadata.store (l.1)",),
    ),
    "a service imports a front door": Case(
        {"infra/leak.py": "from klink.cli import api\n"},
        frozenset({"layers"}),
        ("- klink.infra.leak -> klink.cli.api (l.1)",),
    ),
    "the shared core imports a provider": Case(
        {"store/leak.py": "import klink.providers.base\n"},
        frozenset({"layers"}),
        ("- klink.store.leak -> klink.providers.base (l.1)",),
    ),
    "chat, once it exists, imports the composition": Case(
        {"chat/__init__.py": "", "chat/bot.py": "import klink.server\n"},
        frozenset({"layers"}),
        ("- klink.chat.bot -> klink.server (l.1)",),
    ),
    "a service imports web, once it exists": Case(
        {"web/__init__.py": "", "config/leak.py": "import klink.web\n"},
        frozenset({"layers"}),
        ("- klink.config.leak -> klink.web (l.1)",),
    ),
    "analysis, once it exists, imports a front door": Case(
        {"analysis/__init__.py": "", "analysis/leak.py": "from klink.cli import output\n"},
        frozenset({"layers"}),
        ("- klink.analysis.leak -> klink.cli.output (l.1)",),
    ),
    "chat may use the CLI's verb table": Case(
        {"chat/__init__.py": "from klink.cli import main\n"}, frozenset()
    ),
    "a client command imports a service's client": Case(
        {"cli/leak.py": "import klink.metadata.client\n"},
        frozenset({"cli"}),
        ("- klink.cli.leak -> klink.metadata.client (l.1)",),
    ),
    "a client command imports analysis, once it exists": Case(
        {"analysis/__init__.py": "", "cli/leak.py": "import klink.analysis\n"},
        frozenset({"cli"}),
        ("- klink.cli.leak -> klink.analysis (l.1)",),
    ),
    "an entry point's module imports more than its listed import": Case(
        {"cli/server.py": "import klink.metadata.client\n"},
        frozenset({"cli"}),
        ("klink.cli.server -> klink.metadata.client",),
    ),
    "a client command imports an entry point's module": Case(
        {"cli/leak.py": "from klink.cli import server\n"},
        frozenset({"entry-points"}),
        ("- klink.cli.leak -> klink.cli.server (l.1)",),
    ),
    "boto3 outside klink.providers.aws": Case(
        {"bake/leak.py": "import boto3\n"},
        frozenset({"boto"}),
        ("- klink.bake.leak -> boto3 (l.1)",),
    ),
    "botocore in the local provider": Case(
        {"providers/local/leak.py": "from botocore.exceptions import ClientError\n"},
        frozenset({"boto"}),
        ("- klink.providers.local.leak -> botocore (l.1)",),
    ),
    "production code imports a fake": Case(
        {"providers/local/leak.py": "from klink.testing import fake_provider\n"},
        frozenset({"layers", "testing"}),
        ("- klink.providers.local.leak -> klink.testing.fake_provider (l.1)",),
    ),
    "a new package placed in no layer": Case(
        {"release/__init__.py": ""}, frozenset({"layers"}), ("- klink.release",)
    ),
}


def lint_imports(tree: Path) -> tuple[int, str]:
    result = subprocess.run(
        [Path(sys.executable).with_name("lint-imports"), "--no-cache", "--no-logo"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree / "src"), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_contracts_break_on_their_crossing_only(case: Case, tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    package = tmp_path / "src" / "klink"
    shutil.copytree(ROOT / "src" / "klink", package, ignore=shutil.ignore_patterns("__pycache__"))
    for relative, content in case.files.items():
        path = package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as out:
            out.write(content)

    code, report = lint_imports(tmp_path)

    verdicts = {
        cid: re.search(rf"^{re.escape(name)} (KEPT|BROKEN)", report, re.M)
        for cid, name in CONTRACTS.items()
    }
    assert all(verdicts.values()), report  # every contract ran, none was skipped or failed
    broken = {cid for cid, found in verdicts.items() if found and found[1] == "BROKEN"}
    assert broken == case.broken, report
    assert code == (1 if case.broken else 0), report
    words = " ".join(report.split())  # the contract types indent their lists differently
    for line in case.reported:
        assert " ".join(line.split()) in words, report
