"""A real Prometheus on loopback (Debian's ``prometheus``): the local cloud's own, and the tests'.

``PrometheusServer(folder)`` writes ``prometheus.yml`` (every target scraped every
``scrape_interval``), starts ``prometheus`` on ``127.0.0.1`` on a free port with its data under
``folder``, and waits until it is ready. The process is recorded as (pid, start time, port) in
``prometheus.pid``, so that another process (a restarted daemon, ``klink stop``) can find, adopt
and stop it later without ever signalling a reused pid. ``start`` on a running server keeps it
and reloads it (``/-/reload``) only when its config would change, e.g. a target that moved to
another port. Short retention: this Prometheus holds what a canary needs, not a history.

The local cloud's daemon owns one (``metrics.py``) under ``KLINK_HOME/local/prometheus``,
scraping the daemon's own ``/metrics``, where every per-server series carries its ``group``.
Here are no relabel rules: which group a server slot serves is known to the daemon only.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from klink.errors import InvalidInput, ProviderError
from klink.providers.local import processes

LOOPBACK = "127.0.0.1"
INSTALL_HINT = "prometheus is not installed: run `apt-get install prometheus` (as root)"


def duration(seconds: float) -> str:
    """A Prometheus duration: whole seconds where possible, else milliseconds."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


@dataclass(frozen=True)
class ScrapeTarget:
    job: str
    url: str  # http://127.0.0.1:PORT/metrics

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme != "http" or not (parts.hostname or "").startswith("127."):
            raise InvalidInput(f"scrape targets must be loopback http URLs, not {self.url}")


def render_config(targets: Sequence[ScrapeTarget], scrape_interval: float) -> str:
    every = duration(scrape_interval)
    config: dict[str, Any] = {
        "global": {"scrape_interval": every, "evaluation_interval": every},
        "scrape_configs": [
            {
                "job_name": target.job,
                "metrics_path": urlsplit(target.url).path or "/metrics",
                "static_configs": [{"targets": [urlsplit(target.url).netloc]}],
            }
            for target in targets
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class PrometheusServer:
    def __init__(
        self,
        folder: Path,
        *,
        binary: str = "prometheus",
        scrape_interval: float = 1.0,
        retention: str = "1d",
    ) -> None:
        self.folder = folder
        self.binary = binary
        self.scrape_interval = scrape_interval
        self.retention = retention
        self.config_path = folder / "prometheus.yml"
        self.pid_path = folder / "prometheus.pid"
        self.log_path = folder / "prometheus.log"

    def _record(self) -> tuple[int, int, int] | None:
        try:
            pid, started, port = (int(x) for x in self.pid_path.read_text().split())
        except (FileNotFoundError, ValueError):
            return None
        return (pid, started, port) if processes.alive(pid, started) else None

    def running(self) -> bool:
        return self._record() is not None

    @property
    def url(self) -> str:
        record = self._record()
        if record is None:
            raise ProviderError("prometheus is not running", code="metrics_unavailable")
        return f"http://{LOOPBACK}:{record[2]}"

    def start(self, targets: Sequence[ScrapeTarget], *, timeout: float = 60.0) -> str:
        """Start (or keep) the server scraping ``targets``; returns its URL once ready.

        A running one is kept, and reloaded only if its config changes. ProviderError naming
        ``apt-get install prometheus`` when the binary is missing."""
        if self.running():
            if self._config_text() != render_config(targets, self.scrape_interval):
                self.reload(targets)
            return self.url
        if shutil.which(self.binary) is None:
            raise ProviderError(INSTALL_HINT, field="prometheus")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render_config(targets, self.scrape_interval))
        port = _free_port()
        argv = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.folder / 'data'}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address={LOOPBACK}:{port}",
            "--web.enable-lifecycle",
        ]
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        started = processes.start_time(process.pid)
        self.pid_path.write_text(f"{process.pid} {started} {port}\n")
        url = f"http://{LOOPBACK}:{port}"
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    return url
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-500:]
                raise ProviderError(f"prometheus did not start: {tail.strip()}")
            time.sleep(0.1)

    def _config_text(self) -> str:
        try:
            return self.config_path.read_text()
        except FileNotFoundError:
            return ""

    def pid(self) -> int | None:
        record = self._record()
        return record[0] if record else None

    def reload(self, targets: Sequence[ScrapeTarget]) -> None:
        self.config_path.write_text(render_config(targets, self.scrape_interval))
        try:
            httpx.post(f"{self.url}/-/reload", timeout=10).raise_for_status()
        except httpx.HTTPError as exc:
            raise ProviderError(f"prometheus reload: {exc}") from None

    def stop(self) -> None:
        record = self._record()
        if record is not None:
            processes.stop(record[0], record[1], grace=10.0)
        self.pid_path.unlink(missing_ok=True)

    def wait_scraped(self, job: str, *, timeout: float = 30.0) -> None:
        """Until ``job``'s target has been scraped successfully (``up == 1``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, KeyError, IndexError, ValueError):
                answer = httpx.get(
                    f"{self.url}/api/v1/query", params={"query": f'up{{job="{job}"}}'}, timeout=5
                ).json()
                if answer["data"]["result"][0]["value"][1] == "1":
                    return
            time.sleep(self.scrape_interval / 2)
        raise ProviderError(f"prometheus has not scraped {job} within {timeout:g} s")
