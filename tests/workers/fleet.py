"""A fleet on one real PostgreSQL: ``klink serve`` (KLINK_ENGINE=0) and ``klink worker`` processes.

The cloud is one ``FakeCloud`` served from the test's process, so every worker sees the same
groups and the test inspects them; each worker writes an ``ActionJournal`` (one file each) of
every action it ran. ``TcpProxy`` stands between a worker and PostgreSQL when a test must cut
that worker off the database: ``freeze`` stops every byte both ways (a partition: connections
stay open, nothing arrives), ``thaw`` lets them through again.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from klink import store
from klink.providers.base import TargetGroupSpec
from klink.testing.fake_cloud import FakeCloud
from klink.testing.fake_provider import FakeProvider
from klink.testing.journal import read_journals
from tests.conftest import free_port

SERVE = (
    "import sys\n"
    "from klink.providers import REGISTRY\n"
    "REGISTRY['local'] = 'klink.testing.fake_cloud:FakeCloudProvider'\n"
    "from klink.cli.main import main\n"
    "sys.exit(main(['serve']))\n"
)
# What `klink worker` runs, plus a journal of every action.
WORKER = (
    "import sys\n"
    "from pathlib import Path\n"
    "from klink.providers import REGISTRY\n"
    "REGISTRY['local'] = 'klink.testing.fake_cloud:FakeCloudProvider'\n"
    "from klink.deploy.worker import run_worker\n"
    "from klink.settings import Settings\n"
    "from klink.testing.journal import ActionJournal\n"
    "run_worker(Settings.from_env(), observers=[ActionJournal(Path(sys.argv[1]))])\n"
)
PARAMS = {
    "healthCheckIntervalSeconds": 1,
    "targetGroups": ["web"],
    "desiredCapacity": 2,
    "max": 2,
    "keepWarmSeconds": 1,
}
LEASE = 2.0


class Process:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self.handle = log.open("w")
        self.metrics_url = ""
        self.process = subprocess.Popen(argv, env=env, stdout=self.handle, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill9(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.handle.close()

    def output(self) -> str:
        return self.log.read_text()[-3000:]


class TcpProxy:
    """127.0.0.1:port → target, every connection relayed by a thread, pausable."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.flowing = threading.Event()
        self.flowing.set()
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.target)
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self.stopped.is_set():
                if not self.flowing.wait(0.2):
                    continue  # frozen: nothing is read, so nothing moves either way
                ready, _, _ = select.select([a, b], [], [], 0.2)
                for sock in ready:
                    if not self.flowing.is_set():
                        break
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            a.close()
            b.close()

    def freeze(self) -> None:
        self.flowing.clear()

    def thaw(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()


class Fleet:
    def __init__(self, root: Path, database_url: str, *, boot_seconds: float = 0.0) -> None:
        self.root = root
        self.home = root / "home"
        self.journals = root / "journals"
        self.journals.mkdir(parents=True)
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.fake = FakeProvider(pending_polls=1, delete_polls=1, boot_seconds=boot_seconds)
        self.fake.ensure_target_group(TargetGroupSpec(name="web", port=8080))
        self.cloud = FakeCloud(self.fake)
        self.processes: list[Process] = []
        self.proxies: list[TcpProxy] = []
        self.db = store.create_engine(database_url)
        self.token = ""

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "KLINK_HOME": str(self.home),
            "KLINK_DATABASE_URL": self.database_url,
            "KLINK_LISTEN": f"127.0.0.1:{self.port}",
            "KLINK_ENGINE": "0",
            "KLINK_SCHEDULES": "0",
            "KLINK_LEASE_SECONDS": str(LEASE),
            "KLINK_LOG_LEVEL": "WARNING",
            **extra,
        }

    def serve(self) -> Process:
        server = Process(
            "serve", [sys.executable, "-c", SERVE], self.env(), self.root / "serve.log"
        )
        self.processes.append(server)
        deadline = time.monotonic() + 60
        while True:
            assert server.process.poll() is None, server.output()
            try:
                if httpx.get(f"{self.url}/deploy/healthcheck", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)
        self.token = (self.home / "admin-token").read_text().strip()
        return server

    def worker(self, name: str, *, via_proxy: bool = False, **extra: str) -> Process:
        url = self.database_url
        if via_proxy:
            parsed = sa.engine.make_url(url)
            proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
            self.proxies.append(proxy)
            url = parsed.set(port=proxy.port).render_as_string(hide_password=False)
        metrics = free_port()
        env = self.env(
            **{
                "KLINK_DATABASE_URL": url,
                "KLINK_ENGINE_WORKERS": "2",
                "KLINK_WORKER_METRICS": f"127.0.0.1:{metrics}",
                **extra,
            }
        )
        worker = Process(
            name,
            [sys.executable, "-c", WORKER, str(self.journals / f"{name}.jsonl")],
            env,
            self.root / f"{name}.log",
        )
        worker.metrics_url = f"http://127.0.0.1:{metrics}/metrics"
        self.processes.append(worker)
        return worker

    def wait_ready(self, workers: list[Process]) -> None:
        """Until every worker serves its /metrics: its runtime is open, its engines started."""
        deadline = time.monotonic() + 60
        for worker in workers:
            while True:
                assert worker.process.poll() is None, worker.output()
                try:
                    if httpx.get(worker.metrics_url, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, worker.output()
                time.sleep(0.05)

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        for proxy in self.proxies:
            proxy.thaw()
            proxy.close()
        self.cloud.close()
        self.db.dispose()

    # Through the API -----------------------------------------------------------------
    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )

    def setup(self, apps: list[str]) -> None:
        env_meta = {
            "provider": "local",
            "fakeCloud": self.cloud.address,
            "defaults": {"deployment-params.json": PARAMS},
        }
        with self.http() as http:
            answer = http.put("/metadata/environments/prod", json={"metadata": env_meta})
            assert answer.status_code < 300, answer.text
            for app in apps:
                self.fake.add_image(f"img-{app}1", app, "1.0")
                meta = {"metadata": {"contact": "team@example.com"}}
                assert http.put(f"/metadata/applications/{app}", json=meta).status_code < 300
                answer = http.post(f"/config/repos/{app}/prod")
                assert answer.status_code < 300, answer.text

    def deploy(self, apps: list[str]) -> dict[str, str]:
        ids = {}
        with self.http() as http:
            for app in apps:
                answer = http.post(
                    f"/deploy/{app}/prod", json={"image": f"img-{app}1", "message": "fleet"}
                )
                assert answer.status_code == 201, answer.text
                ids[app] = answer.json()["id"]
        return ids

    def rows(self) -> dict[str, Any]:
        with store.read(self.db) as conn:
            found = conn.execute(
                sa.text("SELECT id, status, cursor, lease_holder, lease_expires FROM deployments")
            ).all()
        return {str(r.id): r for r in found}

    def wait_done(self, ids: list[str], timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows()
            busy = [i for i in ids if rows[i].status in ("preparing", "running")]
            if not busy:
                return
            for process in self.processes:
                assert process.process.poll() is None or process.name.startswith("dead"), (
                    process.name,
                    process.output(),
                )
            assert time.monotonic() < deadline, {i: (rows[i].status, rows[i].cursor) for i in busy}
            time.sleep(0.2)

    def tasks(self, deployment_id: str) -> list[dict[str, Any]]:
        with self.http() as http:
            answer = http.get(f"/deploy/deployments/{deployment_id}/tasks")
            assert answer.status_code == 200
            tasks: list[dict[str, Any]] = answer.json()["tasks"]
            return tasks

    def journal(self) -> list[dict[str, Any]]:
        return read_journals(self.journals)

    # What every test checks ---------------------------------------------------------------
    def check_cloud(self, ids: dict[str, str]) -> None:
        """Each app: exactly one group (v000, created once) with its 2 instances, its launch
        template and no other, and its instances in the target group; nothing else left."""
        with self.fake._lock:
            state = self.fake.state
            # Apps share one target group here: each group is a member of its balancer with
            # every instance registered (which one takes the weight is not the fleet's concern).
            members = {g.name: g.registered for g in self.fake.traffic("web").groups}
            live = {n: g for n, g in state["groups"].items() if g["deleting"] is None}
            created = [name for call, name in self.fake.calls if call == "create_group"]
        for app in ids:
            group = f"{app}-prod-v000"
            assert [n for n in live if n.startswith(f"{app}-")] == [group]
            assert created.count(group) == 1, group
            assert len(live[group]["instances"]) == 2
        templates = sorted(state["templates"])
        assert templates == sorted(g["launch_template"] for g in live.values())
        assert {n: members.get(n) for n in live} == dict.fromkeys(live, 2)

    def check_completed(self, ids: dict[str, str]) -> None:
        rows = self.rows()
        for deployment_id in ids.values():
            assert rows[deployment_id].status == "completed", (deployment_id, rows[deployment_id])


def check_exactly_once(
    fleet: Fleet, ids: dict[str, str], *, may_repeat: set[tuple[str, int, int]] = frozenset()
) -> list[dict[str, Any]]:
    """Every action of every deployment ran once per attempt, by one worker at a time.

    ``may_repeat``: (deployment, seq, attempt) a dead or cut-off worker had started and never
    recorded, which its successor runs again (actions are idempotent; that is the design)."""
    events = [e for e in fleet.journal() if e.get("id") in set(ids.values())]
    starts: dict[tuple[str, int, int], list[str]] = defaultdict(list)
    for e in events:
        if e["event"] == "start":
            starts[(e["id"], e["seq"], e["attempt"])].append(e["worker"])
    repeated = {k: v for k, v in starts.items() if len(v) > 1 and k not in may_repeat}
    assert not repeated, repeated
    for deployment_id in ids.values():
        for task in fleet.tasks(deployment_id):
            ran = sorted(a for (d, s, a) in starts if d == deployment_id and s == task["seq"])
            assert ran == list(range(1, task["attempts"] + 1)), (deployment_id, task)
    # One worker at a time: a deployment's start/end events alternate, each end the same
    # worker's as the start before it (a dead worker's last start has no end).
    open_by: dict[str, tuple[str, int, int] | None] = defaultdict(lambda: None)
    for e in events:
        if e["event"] not in ("start", "end"):
            continue
        key = (e["worker"], e["seq"], e["attempt"])
        if e["event"] == "start":
            running = open_by[e["id"]]
            assert running is None or (running[1], running[2]) in {
                (s, a) for (d, s, a) in may_repeat if d == e["id"]
            }, (e, running)
            open_by[e["id"]] = key
        elif e["event"] == "end" and open_by[e["id"]] == key:
            open_by[e["id"]] = None
    return events
