"""The local cloud's own Prometheus: started once on first use, reused, adopted by a restarted
daemon (and pointed at its new port), stopped by ``klink stop``; a clear error when Prometheus
is not installed. Real daemon, real Prometheus."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from klink.errors import ProviderError
from klink.providers.local import control, daemon, processes
from klink.providers.local.cloud import LocalCloud
from klink.providers.local.promserver import PrometheusServer
from klink.providers.local.provider import LocalProvider
from tests.local.conftest import wait_for

pytestmark = pytest.mark.slow


def scraped_targets(url: str) -> set[tuple[str, str]]:
    """(scrape URL, health) of the active targets of the Prometheus at ``url``."""
    answer = httpx.get(f"{url}/api/v1/targets", params={"state": "active"}, timeout=5).json()
    return {(t["scrapeUrl"], t["health"]) for t in answer["data"]["activeTargets"]}


def test_started_once_reused_adopted_after_a_restart_and_stopped_by_stop(
    cloud: LocalProvider, home: Path
) -> None:
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is not installed: scripts/test installs it (scripts/lib/setup.sh)")
    server = PrometheusServer(home / "local" / "prometheus")
    assert not server.running()  # lazily: nothing until a canary asks
    first = cloud.prometheus()
    assert first.url.startswith("http://127.0.0.1:")
    assert first.scrape_interval == 1.0
    pid = server.pid()
    assert pid is not None
    again = cloud.prometheus()
    assert again == first
    assert server.pid() == pid  # reused, not started twice
    # It scrapes the daemon's own /metrics.
    daemon_url = str(daemon.running(home)["url"])  # type: ignore[index]
    wanted = (f"{daemon_url}/metrics", "up")
    wait_for(lambda: wanted in scraped_targets(first.url), timeout=20, interval=0.2)
    assert httpx.get(f"{daemon_url}/metrics", timeout=5).status_code == 200

    # The daemon restarts (on another port): Prometheus outlives it and is adopted.
    cloud.close()
    assert control.stop_daemon(home)
    assert server.pid() == pid
    url = daemon.ensure(home)
    assert url != daemon_url  # a free port each time
    wait_for(
        lambda: scraped_targets(first.url) == {(f"{url}/metrics", "up")}, timeout=20, interval=0.2
    )
    assert f"{url.removeprefix('http://')}" in server.config_path.read_text()
    restarted = LocalProvider(home, url)
    try:
        assert restarted.prometheus() == first
        assert server.pid() == pid
    finally:
        restarted.close()

    record = server._record()
    assert record is not None
    stopped = control.stop_all(home, grace=2.0)
    assert "prometheus" in stopped
    assert not processes.alive(record[0], record[1])
    assert not server.running()
    assert "prometheus" not in control.stop_all(home, grace=2.0)


def test_without_prometheus_installed_the_error_says_how_to_install_it(tmp_path: Path) -> None:
    cloud = LocalCloud(tmp_path / "home", prometheus_binary="klink-no-such-prometheus")
    cloud.url = "http://127.0.0.1:1"
    try:
        with pytest.raises(ProviderError) as info:
            cloud.prometheus()
    finally:
        cloud.pool.shutdown()
    assert "apt-get install prometheus" in info.value.message
    assert info.value.field == "prometheus"


def test_the_scrape_interval_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert daemon.scrape_interval({}) == 1.0
    assert daemon.scrape_interval({"KLINK_LOCAL_SCRAPE_SECONDS": "5"}) == 5.0
    for bad in ("0", "soon", "-1", "1000"):
        with pytest.raises(daemon.DaemonError) as info:
            daemon.scrape_interval({"KLINK_LOCAL_SCRAPE_SECONDS": bad})
        assert info.value.field == "KLINK_LOCAL_SCRAPE_SECONDS"
    # A bad value is refused before a daemon is started, not found later in its log.
    monkeypatch.setenv("KLINK_LOCAL_SCRAPE_SECONDS", "soon")
    with pytest.raises(daemon.DaemonError) as info:
        daemon.ensure(tmp_path / "home")
    assert "KLINK_LOCAL_SCRAPE_SECONDS='soon'" in info.value.message
    assert daemon.running(tmp_path / "home") is None
    assert not (tmp_path / "home" / "local" / "daemon.log").exists()
