"""`klink quickstart`, as a newcomer runs it: the whole path on one machine, twice.

Real `klink serve` and local cloud (started by the quickstart itself), real git, real HAProxy,
real instances on loopback addresses, a bounded load through the load balancer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow


def quickstart(env: dict[str, str], *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "klink.cli.main", "quickstart", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report: dict[str, Any] = json.loads(result.stdout)  # stdout holds the JSON object only
    return report


def check_report(report: dict[str, Any], env: dict[str, str]) -> None:
    assert report["ok"] is True
    assert report["home"] == env["KLINK_HOME"]
    assert report["api"] == f"http://{env['KLINK_LISTEN']}"
    first, second = report["deploys"]
    assert first["status"] == second["status"] == "completed"
    assert first["image"].startswith("img-")
    assert first["image"] != second["image"]
    assert first["version"] != second["version"]
    # The redeploy ran under load: requests were sent, none failed, and traffic moved from the
    # first version to the second.
    assert second["requests"] > 100
    assert second["failed"] == 0
    assert second["versions_seen"] == sorted([first["version"], second["version"]])
    undo = report["undo"]
    assert undo["undid"] == second["deployment"]
    assert undo["status"] == "completed"
    assert undo["requests"] > 100
    assert undo["failed"] == 0
    assert first["version"] in undo["versions_seen"]
    # The canary of a version answering 5 % with 500 was judged and undone by itself; users saw
    # at most about weight x error rate of the requests fail.
    canary = report["canary"]
    assert canary["status"] == "completed"
    assert canary["undone"] is True
    assert canary["verdict"] == "fail"
    assert canary["critical_failures"] == ["error-rate"]
    assert canary["intervals_judged"] == 1
    assert canary["requests"] > 100
    share = canary["weight"] / 100 * canary["error_rate"]
    assert 0 < canary["failed"] <= canary["requests"] * share * 1.5 + 5


def answering(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body
    except OSError:
        return None


def test_quickstart_runs_the_whole_path_and_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KLINK_")},
        "KLINK_HOME": str(home),
        "KLINK_LISTEN": f"127.0.0.1:{free_port()}",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    try:
        report = quickstart(env)
        check_report(report, env)
        # Without --keep-running, what the quickstart started is stopped.
        assert answering(f"{report['api']}/metadata/healthcheck") is None
        assert answering(f"{report['balancer']}/healthcheck") is None

        # Re-running works (what exists is reused) and --keep-running leaves it all up.
        again = quickstart(env, "--keep-running")
        check_report(again, env)
        assert again["balancer"] == report["balancer"]
        assert int(again["deploys"][0]["version"].rsplit(".", 1)[1]) > int(
            report["deploys"][1]["version"].rsplit(".", 1)[1]
        )
        served = answering(f"{again['balancer']}/healthcheck")
        assert served is not None
        # After the undo, the version before the redeploy serves again.
        assert served["version"] == again["deploys"][0]["version"]
        health = answering(f"{again['api']}/deploy/healthcheck")
        assert health is not None
        assert health["success"] is True
    finally:
        subprocess.run(
            [sys.executable, "-m", "klink.cli.main", "stop"],
            env=env,
            timeout=120,
            check=False,
            capture_output=True,
        )
    assert answering(f"{again['balancer']}/healthcheck") is None
