"""kill -9 of ``klink worker`` on the local provider: real processes, HAProxy and the local
cloud daemon (which outlives the worker). After each kill and a restart the deployment
completes with exactly one group of the app, serving the new version, and nothing orphaned."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from klink.errors import NotFound
from klink.providers import base
from klink.providers.local import control
from klink.providers.local.provider import LocalProvider
from tests.conftest import LiveServer, free_port
from tests.deploy.conftest import GIT_ENV
from tests.deploy.test_worker_kill import Worker, _cursor, no_worker_left
from tests.local.conftest import get_json, make_image

pytestmark = pytest.mark.slow
__all__ = ["no_worker_left"]

PLAIN_WORKER = "import sys\nfrom klink.cli.main import main\nsys.exit(main(['worker']))\n"


@pytest.fixture
def cloud(live_server: LiveServer) -> Iterator[LocalProvider]:
    home = live_server.runtime.settings.home
    provider = LocalProvider.from_environment(
        "dev", {"provider": "local"}, SimpleNamespace(home=home)
    )
    assert isinstance(provider, LocalProvider)
    try:
        yield provider
    finally:
        provider.close()
        control.stop_all(home, grace=2.0)


def test_kill_9_on_the_local_provider(
    live_server: LiveServer, cloud: LocalProvider, tmp_path: Path
) -> None:
    home = live_server.runtime.settings.home
    port, frontend = free_port(), free_port()
    cloud.ensure_target_group(
        base.TargetGroupSpec(
            name="hello-dev",
            port=port,
            health_check_interval_seconds=1,
            healthy_threshold=2,
            unhealthy_threshold=2,
            deregistration_delay_seconds=1,
            frontend_port=frontend,
        )
    )
    with live_server.client() as http:
        env = {"metadata": {"provider": "local"}}
        assert http.put("/metadata/environments/dev", json=env).status_code < 300
        app = {"metadata": {"contact": "team@example.com"}}
        assert http.put("/metadata/applications/hello", json=app).status_code < 300
        assert http.post("/config/repos/hello/dev").status_code < 300
    work = tmp_path / "config"
    git_env = {**os.environ, **GIT_ENV}
    repo = str(home / "config" / "hello-dev.git")
    subprocess.run(["git", "clone", "-q", repo, str(work)], check=True, env=git_env)
    (work / "deployment-params.json").write_text(
        '{"healthCheckIntervalSeconds": 1, "keepWarmSeconds": 1, "targetGroups": ["hello-dev"]}'
    )
    (work / "application-properties.json").write_text(f'{{"service.port": {port}}}')
    subprocess.run(["git", "commit", "-qam", "c"], cwd=work, check=True, env=git_env)
    subprocess.run(["git", "push", "-q", "origin", "HEAD"], cwd=work, check=True, env=git_env)

    db = home / "klink.db"
    templates: list[str] = []
    for number, k in enumerate((38, 45, 53), start=1):  # launch, traffic, retire
        image = make_image(home, f"{number}.0", tmp_path)
        with live_server.client() as http:
            body = {"image": image.id, "message": f"kill at {k}"}
            answer = http.post("/deploy/hello/dev", json=body)
            assert answer.status_code == 201, answer.text
            deployment_id = answer.json()["id"]
        worker = Worker(home, live_server.url, PLAIN_WORKER)
        deadline = time.monotonic() + 90
        while _cursor(db, deployment_id)[0] < k and _cursor(db, deployment_id)[1] != "completed":
            assert time.monotonic() < deadline
            assert worker.process.poll() is None
            time.sleep(0.005)
        worker.kill9()
        killed_at = _cursor(db, deployment_id)
        assert killed_at[1] in ("preparing", "running"), killed_at  # killed mid-plan
        restarted = Worker(home, live_server.url, PLAIN_WORKER)
        deadline = time.monotonic() + 120
        while _cursor(db, deployment_id)[1] in ("preparing", "running"):
            assert time.monotonic() < deadline, _cursor(db, deployment_id)
            time.sleep(0.05)
        restarted.stop()
        with live_server.client() as http:
            d = http.get(f"/deploy/deployments/{deployment_id}").json()
        assert d["status"] == "completed", (k, killed_at, d["error"])
        groups = cloud.list_groups(r"hello-dev-v\d{3}")
        assert [g.name for g in groups] == [f"hello-dev-v{number - 1:03d}"], (k, killed_at)
        assert len(groups[0].instances) == 1
        assert get_json(f"http://127.0.0.1:{frontend}/healthcheck")["version"] == f"{number}.0"
        traffic = cloud.traffic("hello-dev")  # all traffic on the one group left, nothing else
        assert {g.name: g.weight for g in traffic.groups if g.weight} == {groups[0].name: 100}
        member = traffic.get(groups[0].name)
        assert member is not None
        assert member.registered == member.healthy == 1
        assert sum(g.registered + g.draining for g in traffic.groups) == 1
        templates.append(str(groups[0].launch_template))
        for old in templates[:-1]:
            with pytest.raises(NotFound):
                cloud.describe_launch_template(old)
