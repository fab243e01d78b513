"""Reading a config file at a commit: the API (warm cache, cold) against `git show HASH:FILE`.

Starts `klink serve` on a free loopback port in a temporary KLINK_HOME, creates an app whose
repository gets a history of commits (git fast-import), then per round, interleaved so machine
noise hits all three alike: the API at one full hash read before (warm: served from the cache of
immutable reads), the API at a full hash never read before (cold: one `git cat-file` process),
and `git show HASH:deployment-params.json` in a subprocess. Target: API p50 <= 3x git show.

    .venv/bin/python bench/config_read.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "config_read.json"
FILE = "deployment-params.json"
GIT_ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def add_history(repo: Path, count: int) -> list[str]:
    head = subprocess.run(
        ["git", f"--git-dir={repo}", "rev-parse", "main"],
        capture_output=True, text=True, check=True, env=GIT_ENV,
    ).stdout.strip()  # fmt: skip
    stream = []
    for n in range(count):
        params = json.dumps({"min": 1, "max": 9, "desiredCapacity": 1 + n % 9}, indent=2)
        message = f"change {n}"
        stream.append(
            "commit refs/heads/main\n"
            f"committer Bench <bench@example.com> {1_700_000_000 + n} +0000\n"
            f"data {len(message)}\n{message}\n"
            + (f"from {head}\n" if n == 0 else "")
            + f"M 100644 inline {FILE}\ndata {len(params)}\n{params}\n"
        )
    subprocess.run(
        ["git", f"--git-dir={repo}", "fast-import", "--quiet"],
        input="".join(stream).encode(), check=True, env=GIT_ENV,
    )  # fmt: skip
    return subprocess.run(
        ["git", f"--git-dir={repo}", "rev-list", "main"],
        capture_output=True, text=True, check=True, env=GIT_ENV,
    ).stdout.split()  # fmt: skip


def git_version() -> str:
    return subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    klink = str(Path(sys.executable).parent / "klink")
    home = Path(tempfile.mkdtemp(prefix="klink-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "KLINK_HOME": str(home),
        "KLINK_LISTEN": f"127.0.0.1:{port}",
        "KLINK_ENGINE": "0",
        "KLINK_SCHEDULES": "0",
        "KLINK_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [klink, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    samples: dict[str, list[float]] = {"api warm": [], "api cold": [], "git show": []}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/config/ping", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("klink serve did not start") from None
                time.sleep(0.1)
        token = (home / "admin-token").read_text().strip()
        http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
        env_body = {"metadata": {"provider": "local", "createConfigRepo": True}}
        http.put("/metadata/environments/poke", json=env_body).raise_for_status()
        app_body = {"metadata": {"contact": "bench@example.com"}}
        http.put("/metadata/applications/search", json=app_body).raise_for_status()
        repo = home / "config" / "search-poke.git"
        hashes = add_history(repo, args.rounds + 10)
        path = f"/config/repos/search/poke/files/{FILE}"
        warm = hashes[0]
        for _ in range(5):  # warm the cache, the connection and the page cache
            http.get(path, params={"at": warm}).raise_for_status()
            subprocess.run(
                ["git", f"--git-dir={repo}", "show", f"{warm}:{FILE}"],
                stdout=subprocess.DEVNULL, check=True, env=GIT_ENV,
            )  # fmt: skip
        for n in range(args.rounds):
            cold = hashes[n + 1]
            start = time.perf_counter()
            response = http.get(path, params={"at": warm})
            samples["api warm"].append(time.perf_counter() - start)
            assert response.json()["hash"] == warm
            start = time.perf_counter()
            response = http.get(path, params={"at": cold})
            samples["api cold"].append(time.perf_counter() - start)
            assert response.json()["hash"] == cold
            start = time.perf_counter()
            subprocess.run(
                ["git", f"--git-dir={repo}", "show", f"{cold}:{FILE}"],
                stdout=subprocess.DEVNULL, check=True, env=GIT_ENV,
            )  # fmt: skip
            samples["git show"].append(time.perf_counter() - start)
        http.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)
    base = statistics.median(samples["git show"])
    rows = []
    print(f"{'read':<12}{'p50 ms':>9}{'p95 ms':>9}{'p50 / git show':>16}")
    for name, values in samples.items():
        p50, p95 = statistics.median(values), pct(values, 0.95)
        rows.append(
            {
                "read": name,
                "p50_ms": round(p50 * 1000, 3),
                "p95_ms": round(p95 * 1000, 3),
                "ratio_p50_to_git_show": round(p50 / base, 2),
            }
        )
        print(f"{name:<12}{p50 * 1000:>9.2f}{p95 * 1000:>9.2f}{p50 / base:>16.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "config_read",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}, {git_version()}",
                "rounds": args.rounds,
                "target": "API p50 <= 3x `git show HASH:FILE` in a subprocess",
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
