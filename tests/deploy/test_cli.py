"""The deploy commands through ``klink``'s main() against a live server on loopback, and the
engine started by the deploy service's lifespan when ``KLINK_ENGINE`` is on."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from klink.cli.main import main
from klink.deploy import plan as planner
from klink.deploy.context import Services
from klink.deploy.engine import Engine
from klink.deploy.services import runtime_services
from klink.deploy.store import DeploymentStore
from klink.providers.base import TargetGroupSpec
from klink.server import create_app
from klink.service.runtime import Runtime, utcnow
from klink.testing.fake_provider import FakeProvider
from tests.conftest import LiveServer, make_settings
from tests.deploy.conftest import GIT_ENV, IMG1, IMG2

pytestmark = pytest.mark.slow


def _fake_services(runtime: Runtime, fake: FakeProvider) -> Services:
    base = runtime_services(runtime)
    return Services(
        metadata=base.metadata,
        config=base.config,
        provider_for=lambda env, meta: fake,
        notifier=base.notifier,
        probe=lambda url: False,
        clock=utcnow,
    )


def _prepare(runtime: Runtime, http: Any, fake: FakeProvider, home: Path, params: str) -> None:
    fake.ensure_target_group(TargetGroupSpec(name="web", port=8080))
    fake.add_image(IMG1, "search", "1.0")
    fake.add_image(IMG2, "search", "2.0")
    assert (
        http.put(
            "/metadata/environments/prod", json={"metadata": {"provider": "local"}}
        ).status_code
        < 300
    )
    app = {"metadata": {"contact": "team@example.com"}}
    assert http.put("/metadata/applications/search", json=app).status_code < 300
    assert http.post("/config/repos/search/prod").status_code < 300
    work = home.parent / "work"
    env = {**os.environ, **GIT_ENV}
    subprocess.run(
        ["git", "clone", "-q", str(home / "config" / "search-prod.git"), str(work)],
        check=True,
        env=env,
    )
    (work / "deployment-params.json").write_text(params)
    subprocess.run(["git", "commit", "-qam", "p"], cwd=work, check=True, env=env)
    subprocess.run(["git", "push", "-q", "origin", "HEAD"], cwd=work, check=True, env=env)


@pytest.fixture
def served(live_server: LiveServer) -> Iterator[tuple[LiveServer, FakeProvider]]:
    fake = FakeProvider(pending_polls=1, delete_polls=0)
    runtime = live_server.runtime
    runtime.extras["deploy.services"] = lambda: _fake_services(runtime, fake)
    with live_server.client() as http:
        _prepare(
            runtime,
            http,
            fake,
            runtime.settings.home,
            '{"targetGroups": ["web"], "instanceHealthyAttempts": 2}',
        )
    return live_server, fake


def klink(
    capsys: pytest.CaptureFixture[str], server: LiveServer, *argv: str
) -> tuple[int, str, str]:
    code = main([*argv, "--server", server.url, "--token", server.token])
    out, err = capsys.readouterr()
    return code, out, err


def drain(server: LiveServer) -> None:
    runtime = server.runtime
    Engine(
        DeploymentStore(runtime.engine), runtime.extras["deploy.services"](), clock=utcnow
    ).drain()


def test_deploy_watch_history_boxes(
    capsys: pytest.CaptureFixture[str], served: tuple[LiveServer, FakeProvider]
) -> None:
    server, fake = served
    code, out, err = klink(
        capsys, server, "deploy", "search", "prod", IMG1, "-m", "first", "--dry-run"
    )
    assert code == 0, err
    assert "create   search-prod-v000" in out
    assert "create_launch_template" in out
    assert fake.count("create_group") == 0
    code, out, _ = klink(
        capsys, server, "deploy", "search", "prod", IMG1, "-m", "first", "--no-wait", "--json"
    )
    assert code == 0
    started = json.loads(out)
    assert set(started) == {"id", "status"}
    drain(server)
    code, out, _ = klink(capsys, server, "watch", started["id"])
    assert code == 0
    assert "create_group: group search-prod-v000 created" in out
    first = len(planner.PREPARATION) + 1  # the first deployment action, over the whole plan
    assert f"[{first}/" in out
    assert "shift_traffic: traffic on web: search-prod-v000 100" in out  # every shift is logged
    assert out.strip().endswith(f"deployment {started['id']} completed")
    code, out, _ = klink(capsys, server, "watch", started["id"], "--json")
    assert json.loads(out)["status"] == "completed"
    code, out, _ = klink(capsys, server, "deployments", "search")
    assert started["id"] in out
    assert "completed" in out
    code, out, _ = klink(capsys, server, "boxes", "search", "prod", "--json")
    assert json.loads(out)["group"] == "search-prod-v000"
    code, out, _ = klink(capsys, server, "boxes", "search", "prod")
    assert code == 0
    traffic = out.split("traffic:")[1].split()
    assert traffic[-4:] == ["web", "search-prod-v000", "100", "1/1"]  # weight, healthy/registered


def test_failed_deployment_watch_exits_1_and_undo(
    capsys: pytest.CaptureFixture[str], served: tuple[LiveServer, FakeProvider]
) -> None:
    server, fake = served
    fake.make_unhealthy(IMG1)
    code, out, _ = klink(
        capsys, server, "deploy", "search", "prod", IMG1, "-m", "x", "--no-wait", "--json"
    )
    deployment_id = json.loads(out)["id"]
    drain(server)
    code, out, err = klink(capsys, server, "watch", deployment_id)
    assert code == 1
    assert err.count("\n") == 1
    assert "failed" in err
    assert "gave up" in err
    code, _, err = klink(capsys, server, "deploy", "search", "prod", IMG2, "-m", "y")
    assert code == 1
    assert "in progress" in err
    assert "Traceback" not in err
    code, out, _ = klink(capsys, server, "undo", "search", "prod", "-m", "back", "--dry-run")
    assert code == 0
    assert "remove   search-prod-v000" in out
    code, out, _ = klink(capsys, server, "undo", "search", "prod", "-m", "back", "--no-wait")
    assert code == 0
    drain(server)
    assert fake.list_groups(r"search-prod-v\d{3}") == []


def test_ctrl_c_while_watching_leaves_it_running(
    capsys: pytest.CaptureFixture[str],
    served: tuple[LiveServer, FakeProvider],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, _fake = served
    code, out, _ = klink(
        capsys, server, "deploy", "search", "prod", IMG1, "-m", "x", "--no-wait", "--json"
    )
    deployment_id = json.loads(out)["id"]

    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("klink.cli.deploy.time.sleep", interrupt)
    code, _, err = klink(capsys, server, "watch", deployment_id)
    assert code == 130
    assert f"deployment {deployment_id} goes on" in err
    with server.client() as http:
        assert http.get(f"/deploy/deployments/{deployment_id}").json()["status"] == "preparing"


def test_usage_errors_exit_2_and_lock_unlock(
    capsys: pytest.CaptureFixture[str], served: tuple[LiveServer, FakeProvider]
) -> None:
    server, _fake = served
    with pytest.raises(SystemExit) as info:
        main(["deploy", "search", "prod", IMG1])  # no -m
    assert info.value.code == 2
    capsys.readouterr()
    code, _, err = klink(capsys, server, "unlock", "search")
    assert code == 2
    assert "both APP and ENV" in err
    assert klink(capsys, server, "lock", "-m", "release freeze")[0] == 0
    code, _, err = klink(capsys, server, "deploy", "search", "prod", IMG1, "-m", "x")
    assert code == 1
    assert "release freeze" in err
    assert klink(capsys, server, "unlock")[0] == 0
    code, _, err = klink(capsys, server, "deploy", "search", "prod", "-m", "x")
    assert code == 2
    assert IMG2 in err


def test_engine_runs_inside_serve_when_enabled(home: Path) -> None:
    settings = make_settings(home, KLINK_ENGINE="1", KLINK_ENGINE_WORKERS="2")
    runtime = Runtime.open(settings)
    fake = FakeProvider(pending_polls=2, delete_polls=1)
    app = create_app(runtime)
    token = settings.admin_token_path.read_text().strip()
    runtime.http_factory = lambda service: TestClient(
        app,
        base_url=f"http://testserver/{service}",
        headers={"Authorization": f"Bearer {runtime.internal_token}"},
    )
    runtime.extras["deploy.services"] = lambda: _fake_services(runtime, fake)
    try:
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
            _prepare(
                runtime,
                client,
                fake,
                home,
                '{"targetGroups": ["web"], "healthCheckIntervalSeconds": 1}',
            )
            answer = client.post("/deploy/search/prod", json={"image": IMG1, "message": "m"})
            assert answer.status_code == 201
            deadline = time.monotonic() + 60
            while True:
                d = client.get(f"/deploy/deployments/{answer.json()['id']}").json()
                if d["status"] not in ("preparing", "running"):
                    break
                assert time.monotonic() < deadline, d
                time.sleep(0.1)
            assert d["status"] == "completed", d["error"]
        assert [g.name for g in fake.list_groups(r"search-prod-v\d{3}")] == ["search-prod-v000"]
    finally:
        runtime.close()
