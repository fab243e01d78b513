"""The daemon outlives its caller, re-adopts its instances after a restart, and stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from klink.cli.main import main
from klink.providers import base
from klink.providers.local import control, daemon, processes
from klink.providers.local.haproxy import HAProxy
from klink.providers.local.provider import LocalProvider
from tests.conftest import free_port
from tests.local.conftest import get_json, group_with, in_service, serving, wait_for

pytestmark = pytest.mark.slow


def _caller(home: Path) -> str:
    """A separate process (like ``klink serve``) that starts the daemon, then dies."""
    code = (
        "import sys; from pathlib import Path; from klink.providers.local import daemon;"
        "print(daemon.ensure(Path(sys.argv[1])))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(home)], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_daemon_survives_its_caller_and_readopts_after_restart(
    home: Path, hello_image: base.Image
) -> None:
    try:
        url = _caller(home)
        info = daemon.running(home)
        assert info is not None
        assert info["url"] == url
        assert get_json(f"{url}/health")["ok"] is True
        provider = LocalProvider(home, url)
        port = free_port()
        frontend = free_port()
        provider.ensure_target_group(
            base.TargetGroupSpec(
                name="hello-dev",
                port=port,
                health_check_interval_seconds=1,
                frontend_port=frontend,
            )
        )
        group_with(
            provider, hello_image, "hello-dev-v000", 2, port=port, target_groups=("hello-dev",)
        )
        before = wait_for(lambda: in_service(provider, "hello-dev-v000", 2))
        wait_for(lambda: serving(before, port))
        # New servers take traffic once HAProxy's own checks pass (rise 2).
        wait_for(lambda: {t.state for t in provider.target_health("hello-dev")} == {"healthy"})
        provider.close()

        # The daemon stops; instances and HAProxy keep serving without it.
        assert control.stop_daemon(home)
        assert daemon.running(home) is None
        assert serving(before, port)
        assert get_json(f"http://127.0.0.1:{frontend}/healthcheck")["version"] == "1.0"
        # HAProxy dies too while no daemon watches.
        HAProxy(home / "local" / "haproxy").stop()

        # A new daemon adopts the same instances (no relaunch) and restarts HAProxy.
        provider = LocalProvider(home, daemon.ensure(home))
        after = wait_for(lambda: in_service(provider, "hello-dev-v000", 2))
        assert {i.id for i in after} == {i.id for i in before}
        wait_for(lambda: {t.state for t in provider.target_health("hello-dev")} == {"healthy"})
        assert get_json(f"http://127.0.0.1:{frontend}/healthcheck")["version"] == "1.0"

        # Adoption still watches them: a killed adopted instance is replaced.
        state = json.loads((home / "local" / "state.json").read_text())
        victim = before[0].id
        os.kill(state["instances"][victim]["pid"], signal.SIGKILL)
        wait_for(
            lambda: (
                victim not in {i.id for i in in_service(provider, "hello-dev-v000", 2)}
                and in_service(provider, "hello-dev-v000", 2)
            )
        )
        provider.close()
    finally:
        control.stop_all(home, grace=2.0)


def test_reused_pid_is_not_mistaken() -> None:
    pid = os.getpid()
    started = processes.start_time(pid)
    assert started is not None
    assert processes.alive(pid, started)
    assert not processes.alive(pid, started + 1)
    assert not processes.alive(None, started)


def test_klink_stop_stops_everything_in_order(
    home: Path,
    hello_image: base.Image,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KLINK_HOME", str(home))
    assert main(["stop"]) == 0
    assert "nothing was running" in capsys.readouterr().err
    try:
        provider = LocalProvider(home, daemon.ensure(home))
        port = free_port()
        provider.ensure_target_group(
            base.TargetGroupSpec(name="hello-dev", port=port, frontend_port=free_port())
        )
        group_with(
            provider, hello_image, "hello-dev-v000", 2, port=port, target_groups=("hello-dev",)
        )
        instances = wait_for(lambda: in_service(provider, "hello-dev-v000", 2))
        wait_for(lambda: serving(instances, port))
        provider.close()
        state = json.loads((home / "local" / "state.json").read_text())
        pids = [(r["pid"], r["started"]) for r in state["instances"].values()]
        lb = HAProxy(home / "local" / "haproxy")
        assert lb.running()
    finally:
        assert main(["stop", "--grace", "2"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == "stopped: local cloud daemon, 2 instances, haproxy"
    assert daemon.running(home) is None
    assert not lb.running()
    assert not any(processes.alive(pid, started) for pid, started in pids)
    assert main(["stop"]) == 0


def test_local_cloud_refuses_without_haproxy(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KLINK_HOME", str(home))
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["local-cloud"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "apt-get install haproxy" in err
    assert not (home / "local" / "daemon.json").exists()


def test_daemon_api_errors_are_json_naming_the_field(cloud: LocalProvider) -> None:
    import httpx

    http = cloud.http
    missing = http.post("/call/no_such_method", json={})
    assert missing.status_code == 404
    assert missing.json()["error"]["field"] == "method"
    bad_args = http.post("/call/resize_group", json={"args": ["g"], "kwargs": {"nope": 1}})
    assert bad_args.status_code == 400
    assert bad_args.json()["error"]["code"] == "invalid"
    not_json = http.post(
        "/call/list_groups", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    bad_tail = http.get("/instances/i-1/log", params={"tail": "x"})
    assert bad_tail.status_code == 400
    assert bad_tail.json()["error"] == {
        "code": "invalid",
        "message": "tail must be a number of lines",
        "field": "tail",
    }
    assert cloud.instance_log("i-unknown") == ""
    assert isinstance(http, httpx.Client)
