"""The web UI's speed: every page's time at the server with 100 applications x 5 environments
and 5,000 deployments in history, and how soon a live update reaches a browser's stream.

``klink serve`` (all services, the engine, the local cloud) runs as in production in a temp
``KLINK_HOME``. Its history is seeded before it starts: 5,000 deployment records (about 10
per app+env, 60-action plans, group states with ~2 KB of user-data, tasks and logs for some)
written into its database, and 100 applications and 5 environments through the metadata API. Pages
are then fetched round-robin with a signed-in session (a reader token) and timed by the
server's own ``Server-Timing`` header (the web service's time: its calls to the other services
over loopback included); the client's wall time is reported beside it. Target: p95 <= 50 ms.

Live: ``hello`` is deployed for real in ``dev`` while the benchmark follows the deployment's SSE
stream (and the overview's). Each event's arrival is compared with the moment its action was
persisted (the task's ``endedAt``, written in the same transaction as the cursor): target
<= 0.5 s.

    .venv/bin/python bench/web_pages.py [--rounds 60]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.benchkit import load_average, make_image, table, write_result
from tests.e2e.platform import Platform, local_hello

from klink import store
from klink.deploy.tables import deploy_logs, deploy_tasks, deployments
from klink.settings import Settings

APPS, ENVS, HISTORY = 100, ("dev", "test", "stage", "prod", "perf"), 5000
ACTIONS = 60
TARGET_MS, LIVE_TARGET_S = 50.0, 0.5
USER_DATA = "#cloud-config\nwrite_files:\n" + "".join(
    f"  - path: /etc/app/file{n}.properties\n    content: |\n      key{n}=value{n}\n"
    for n in range(40)
)


def app_names() -> list[str]:
    return ["hello", *(f"app{n:03d}" for n in range(APPS - 1))]


def seed_history(platform: Platform) -> str:
    """5,000 deployment records straight into the database; returns one seeded id."""
    settings = Settings.from_env(platform.env)
    engine = store.create_engine(settings.database_url)
    store.migrate(engine)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    plan = [{"name": f"action_{n:02d}", "phase": "deploy", "args": {}} for n in range(ACTIONS)]
    rows, tasks, logs = [], [], []
    sample = ""
    cells = [(app, env) for app in app_names()[1:] for env in ENVS]  # hello's is made for real
    for n in range(HISTORY):
        (app, env), k = cells[n % len(cells)], n // len(cells)
        at = start + timedelta(minutes=n)
        ident = f"{n + 1:012x}"
        image = f"img-{n + 1:012x}"
        state = {
            "name": f"{app}-{env}-v{k:03d}",
            "launch": {"name": f"{app}-{env}-v{k:03d}-lt", "image_id": image,
                       "instance_type": "t3.small", "user_data": USER_DATA},
            "min_size": 1, "max_size": 4, "desired_capacity": 2,
            "image_id": image, "version": f"1.{k}", "config_commit": f"{n + 1:040x}",
        }  # fmt: skip
        failed = k == 7
        rows.append({
            "id": ident, "app": app, "env": env, "kind": "deploy", "image": image,
            "commit": state["config_commit"], "config_commit": state["config_commit"],
            "user": f"person{n % 7}", "message": f"bench {n}",
            "status": "failed" if failed else "completed", "phase": "deploy", "undo": False,
            "previous_state": None, "new_state": state, "facts": {}, "plan": plan,
            "cursor": 40 if failed else ACTIONS, "error": "bench: failed" if failed else None,
            "control": None, "created_at": at, "updated_at": at + timedelta(seconds=90),
            "finished_at": None if failed else at + timedelta(seconds=90),
        })  # fmt: skip
        if (app, env) == ("app000", "prod"):
            sample = ident
            for seq in range(ACTIONS):
                tasks.append({
                    "deployment_id": ident, "seq": seq, "action": f"action_{seq:02d}",
                    "phase": "deploy", "attempts": 1, "status": "done",
                    "started_at": at + timedelta(seconds=seq),
                    "ended_at": at + timedelta(seconds=seq + 1), "message": None,
                })  # fmt: skip
                logs.append({"deployment_id": ident, "seq": seq, "at": at,
                             "message": f"action_{seq:02d} done"})  # fmt: skip
    with engine.begin() as conn:
        conn.execute(deployments.insert(), rows)
        conn.execute(deploy_tasks.insert(), tasks)
        conn.execute(deploy_logs.insert(), logs)
    engine.dispose()
    return sample


def seed_catalogue(platform: Platform) -> None:
    for env in ENVS:
        platform.call(
            "PUT", f"/metadata/environments/{env}", json={"metadata": {"provider": "local"}}
        )
    for app in app_names()[1:]:
        body = {
            "metadata": {"contact": f"{app}@example.com", "docs": f"https://docs.example/{app}"}
        }
        platform.call("PUT", f"/metadata/applications/{app}", json=body)
    for env in ENVS:
        platform.call("POST", f"/config/repos/app000/{env}")


def signed_in(platform: Platform) -> httpx.Client:
    token = platform.call("POST", "/auth/tokens", json={"name": "bench", "role": "reader"})["token"]
    client = httpx.Client(base_url=platform.url, timeout=30)
    answer = client.post("/sign-in", data={"token": token})
    if answer.status_code != 303 or "klink_session" not in client.cookies:
        raise SystemExit(f"cannot sign in: {answer.status_code}")
    return client


def server_ms(response: httpx.Response) -> float:
    found = re.search(r"app;dur=([0-9.]+)", response.headers.get("server-timing", ""))
    if found is None:
        raise SystemExit(f"no Server-Timing on {response.url}")
    return float(found.group(1))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)


def measure_pages(
    client: httpx.Client, api: httpx.Client, pages: list[str], rounds: int
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Each page's times, and beside them, in the same rounds, ``GET /metadata/ping`` (the
    cheapest request the server answers): how busy the machine was while pages were timed."""
    server: dict[str, list[float]] = {p: [] for p in pages}
    wall: dict[str, list[float]] = {p: [] for p in pages}
    ping: list[float] = []
    for page in pages:  # warm up
        answer = client.get(page)
        if answer.status_code != 200:
            raise SystemExit(f"{page}: {answer.status_code} {answer.text[:300]}")
    for _ in range(rounds):
        for page in pages:
            began = time.perf_counter()
            api.get("/metadata/ping")
            ping.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            answer = client.get(page)
            wall[page].append((time.perf_counter() - began) * 1000)
            server[page].append(server_ms(answer))
            if answer.status_code != 200:
                raise SystemExit(f"{page}: {answer.status_code}")
    baseline = {"ping_p50_ms": percentile(ping, 0.5), "ping_p95_ms": percentile(ping, 0.95)}
    return [
        {
            "page": page,
            "server_p50_ms": percentile(server[page], 0.5),
            "server_p95_ms": percentile(server[page], 0.95),
            "wall_p95_ms": percentile(wall[page], 0.95),
            "bytes": len(client.get(page).content),
        }
        for page in pages
    ], baseline


class Follower(threading.Thread):
    """Reads an SSE stream; records (arrival time, event name, data) of each event."""

    def __init__(self, client: httpx.Client, path: str) -> None:
        super().__init__(daemon=True)
        self.client, self.path = client, path
        self.events: list[tuple[datetime, str, str]] = []
        self.ready = threading.Event()
        self.stop = False

    def run(self) -> None:
        with self.client.stream("GET", self.path, timeout=None) as stream:
            self.ready.set()
            name, data = "", []
            for line in stream.iter_lines():
                if self.stop:
                    return
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and name:
                    self.events.append((datetime.now(UTC), name, "\n".join(data)))
                    if name == "done":
                        return
                    name, data = "", []


def follow_one(
    platform: Platform, client: httpx.Client, work: Path, version: str
) -> tuple[list[float], float | None, int]:
    """Deploy ``version`` while following its stream and the overview's: the delay of each
    update after its action was persisted, the overview's delay after the end, the actions."""
    overview = Follower(client, "/events")
    overview.start()
    overview.ready.wait(10)
    image = make_image(platform.home, version, work)
    ident = platform.deploy("hello", "dev", image, f"bench live {version}")
    follower = Follower(client, f"/deployments/{ident}/events")
    follower.start()
    record = platform.wait(ident, 120)
    follower.join(30)
    time.sleep(1.0)
    overview.stop = True
    tasks = {t["seq"]: t for t in platform.tasks(ident)}
    delays = []
    shown_cursors: set[int] = set()
    # The first event catches up with what happened before the stream was opened: not timed.
    for arrived, name, data in follower.events[1:]:
        found = re.search(r'<progress max="\d+" value="(\d+)"', data)
        if name != "deployment" or found is None:
            continue
        cursor = int(found.group(1))
        if cursor in shown_cursors:  # a waiting action polled again: no new action persisted
            continue
        shown_cursors.add(cursor)
        done = tasks.get(cursor - 1)
        if done is None or not done.get("endedAt"):
            continue
        delays.append((arrived - datetime.fromisoformat(done["endedAt"])).total_seconds())
    finished = datetime.fromisoformat(record["finishedAt"])
    cell = re.compile(rf'class="version" href="/apps/hello/dev">{re.escape(version)}<')
    shown = [a for a, name, data in overview.events if name == "overview" and cell.search(data)]
    return delays, (shown[0] - finished).total_seconds() if shown else None, len(tasks)


def measure_live(platform: Platform, client: httpx.Client, work: Path) -> dict[str, Any]:
    local_hello(platform, {"desiredCapacity": 1, "max": 1, "instanceHealthyAttempts": 20})
    first = make_image(platform.home, "1.0", work)
    platform.wait(platform.deploy("hello", "dev", first, "bench warm-up"), 120)
    delays: list[float] = []
    overview: list[float] = []
    actions = 0
    for version in ("2.0", "3.0", "4.0"):
        more, late, actions = follow_one(platform, client, work, version)
        delays += more
        if late is not None:
            overview.append(late)
    return {
        "deployments": 3,
        "actions": actions,
        "delays_measured": len(delays),
        "delay_p50_s": percentile(delays, 0.5) if delays else None,
        "delay_p95_s": percentile(delays, 0.95) if delays else None,
        "delay_max_s": round(max(delays), 3) if delays else None,
        "overview_delays_s": [round(x, 3) for x in overview],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="klink-bench-web-") as tmp:
        platform = Platform(Path(tmp), {"KLINK_LOG_LEVEL": "ERROR"})
        try:
            sample = seed_history(platform)
            platform.start()
            seed_catalogue(platform)
            client = signed_in(platform)
            other = client.get("/deployments", params={"app": "app000", "env": "prod", "limit": 2})
            ids = re.findall(r'href="/deployments/([0-9a-f]{12})"', other.text)
            pages = [
                "/",
                "/apps/app000",
                "/apps/app000/prod",
                "/apps/app000/prod/part/health",
                "/apps/app000/prod/part/commits",
                "/deployments",
                "/deployments?status=failed",
                "/deployments?user=person3",
                f"/deployments/{sample}",
                f"/diff?a={ids[1]}&b={ids[0]}",
                "/images",
                "/images?app=app000",
                "/infra",
                "/audit",
            ]
            load_before = load_average()
            with platform.client() as api:
                figures, baseline = measure_pages(client, api, pages, args.rounds)
            live = measure_live(platform, client, Path(tmp) / "images")
            load_after = load_average()
        finally:
            platform.close()
    print(table(
        ["page", "server p50 ms", "server p95 ms", "client p95 ms", "bytes"],
        [[f["page"], f["server_p50_ms"], f["server_p95_ms"], f["wall_p95_ms"], f["bytes"]]
         for f in figures],
    ))  # fmt: skip
    worst = max(f["server_p95_ms"] for f in figures)
    print(f"\nworst server p95 {worst} ms (target <= {TARGET_MS} ms)")
    print(
        f"beside them, GET /metadata/ping: p50 {baseline['ping_p50_ms']} ms, p95 "
        f"{baseline['ping_p95_ms']} ms; load average {load_before} before, {load_after} after"
    )
    print(
        f"live, 3 deployments: {live['delays_measured']} updates timed, delay after the "
        f"action was persisted p50 {live['delay_p50_s']} s, p95 {live['delay_p95_s']} s, max "
        f"{live['delay_max_s']} s (target <= {LIVE_TARGET_S} s); the overview showed each new "
        f"version {live['overview_delays_s']} s after its deployment finished"
    )
    path = write_result(
        "web_pages",
        {
            "apps": APPS,
            "envs": len(ENVS),
            "deployments": HISTORY + 2,
            "rounds": args.rounds,
            "load_average": [load_before, load_after],
            "pages": figures,
            "ping": baseline,
            "worst_server_p95_ms": worst,
            "target_ms": TARGET_MS,
            "live": live,
            "live_target_s": LIVE_TARGET_S,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
