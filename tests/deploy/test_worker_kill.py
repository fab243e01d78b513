"""kill -9 of a real engine process (``klink worker`` on a temp SQLite) after action k, then a
restart: the deployment completes with exactly one new group and nothing orphaned.

The worker runs FakeProvider (registered in place of ``local`` by the harness below, with its
state saved to a file after every call) so that what the dead process did can be inspected.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from klink.providers.base import TargetGroupSpec
from klink.testing.fake_provider import FakeProvider
from tests.conftest import LiveServer
from tests.deploy.conftest import GIT_ENV

HARNESS = (
    "import sys\n"
    "from klink.providers import REGISTRY\n"
    "REGISTRY['local'] = 'klink.testing.fake_provider:FakeProvider'\n"
    "from klink.cli.main import main\n"
    "sys.exit(main(['worker']))\n"
)


def _git(args: list[str], cwd: Path) -> None:
    subprocess.run(
        ["git", *args], cwd=cwd, check=True, env={**os.environ, **GIT_ENV}, capture_output=True
    )


def _cursor(db: Path, deployment_id: str) -> tuple[int, str]:
    with sqlite3.connect(db, timeout=30) as conn:
        row = conn.execute(
            "SELECT cursor, status FROM deployments WHERE id = ?", (deployment_id,)
        ).fetchone()
    return int(row[0]), str(row[1])


class Worker:
    started: ClassVar[list[Worker]] = []

    def __init__(self, home: Path, url: str, harness: str = HARNESS) -> None:
        port = url.rsplit(":", 1)[1]
        env = {
            **os.environ,
            "KLINK_HOME": str(home),
            "KLINK_LISTEN": f"127.0.0.1:{port}",
            "KLINK_ENGINE_WORKERS": "1",
            "KLINK_LEASE_SECONDS": "1.5",
            "KLINK_SCHEDULES": "0",
            "KLINK_LOG_LEVEL": "WARNING",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-c", harness],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        Worker.started.append(self)

    def kill9(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(autouse=True)
def no_worker_left() -> Iterator[None]:
    yield
    while Worker.started:
        worker = Worker.started.pop()
        if worker.process.poll() is None:
            worker.stop()


@pytest.mark.slow
def test_kill_9_after_action_k_then_restart_completes(
    live_server: LiveServer, tmp_path: Path
) -> None:
    home = live_server.runtime.settings.home
    state = tmp_path / "fake-cloud.json"
    setup = FakeProvider(state_path=state)
    setup.ensure_target_group(TargetGroupSpec(name="web", port=8080))
    for number in range(1, 6):
        setup.add_image(f"img-00000000000{number}", "search", f"{number}.0")
    env_meta = {"provider": "local", "fakeStatePath": str(state), "fakeLatency": 0.01}
    with live_server.client() as http:
        assert (
            http.put("/metadata/environments/prod", json={"metadata": env_meta}).status_code < 300
        )
        app = {"metadata": {"contact": "team@example.com"}}
        assert http.put("/metadata/applications/search", json=app).status_code < 300
        assert http.post("/config/repos/search/prod").status_code < 300
    work = tmp_path / "config"
    _git(["clone", "-q", str(home / "config" / "search-prod.git"), str(work)], tmp_path)
    (work / "deployment-params.json").write_text(
        '{"healthCheckIntervalSeconds": 1, "keepWarmSeconds": 1, "targetGroups": ["web"], '
        '"desiredCapacity": 2, "max": 2}'
    )
    _git(["commit", "-qam", "params"], work)
    _git(["push", "-q", "origin", "HEAD"], work)

    db = home / "klink.db"
    kill_points = [3, 36, 41, 47, 55]  # preparation, launch, health/traffic, retire, cleanup
    expected_group = None
    for number, k in enumerate(kill_points, start=1):
        with live_server.client() as http:
            response = http.post(
                "/deploy/search/prod",
                json={"image": f"img-00000000000{number}", "message": f"kill at {k}"},
            )
            assert response.status_code == 201, response.text
            deployment_id = response.json()["id"]
        worker = Worker(home, live_server.url)
        deadline = time.monotonic() + 60
        while _cursor(db, deployment_id)[0] < k:
            assert time.monotonic() < deadline, worker.process.stderr
            assert worker.process.poll() is None
            time.sleep(0.002)
        worker.kill9()
        killed_at, status = _cursor(db, deployment_id)
        assert status in ("preparing", "running"), status
        restarted = Worker(home, live_server.url)
        deadline = time.monotonic() + 90
        while _cursor(db, deployment_id)[1] in ("preparing", "running"):
            assert time.monotonic() < deadline, f"stuck at {_cursor(db, deployment_id)}"
            time.sleep(0.05)
        restarted.stop()
        print(f"k={k} killed_at={killed_at} t={time.monotonic():.1f}")
        with live_server.client() as http:
            d = http.get(f"/deploy/deployments/{deployment_id}").json()
        assert d["status"] == "completed", (k, killed_at, d["error"])
        cloud = FakeProvider(state_path=state)
        groups = [g.name for g in cloud.list_groups(r"search-prod-v\d{3}")]
        expected_group = f"search-prod-v{number - 1:03d}"
        assert groups == [expected_group], (k, killed_at, groups)
        group = cloud.describe_group(expected_group)
        assert len(group.instances) == 2
        assert list(cloud.state["templates"]) == [group.launch_template]  # no orphan template
        assert sorted(cloud.serving("web")) == sorted(i.id for i in group.instances)
        assert cloud.count("create_group") == number  # never created twice
        # Each action of the plan ran to done exactly once more than it was interrupted.
        with live_server.client() as http:
            tasks = http.get(f"/deploy/deployments/{deployment_id}/tasks").json()["tasks"]
        assert [t["seq"] for t in tasks] == list(range(len(d["plan"])))
        assert all(t["status"] == "done" for t in tasks)
    assert expected_group == "search-prod-v004"
