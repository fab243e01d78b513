"""Local bakes: a base bake, and a service bake of a 50 MB artifact (the release path).

The service bake is measured twice: the native baker alone (link the base tree, unpack the
artifact into ``opt/APP``, run a bake command, freeze, rename into place), and the whole
``POST /bake/images`` path on a real server (fetch the artifact from the build service over
HTTP with its checksum checked, then the same bake). The base holds a few thousand small files
(what a base image's tree looks like), so that linking it is part of the figure. Rounds are
medians; the issue's target is "about a second" for the service bake.

    .venv/bin/python bench/bake_local.py [--rounds 5] [--size-mb 50]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import statistics
import sys
import tarfile
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "bake_local.json"
sys.path.insert(0, str(ROOT / "src"))

from klink.bake.local import DEFAULT_BASE_STEPS, LocalBaker  # noqa: E402
from klink.providers.local.images import ImageStore  # noqa: E402

# A base with 4000 small files in 40 folders, like a system tree.
BASE_STEPS = (
    *DEFAULT_BASE_STEPS,
    "for d in $(seq 1 40); do mkdir -p usr/lib/d$d; for f in $(seq 1 100); do "
    "printf 'file %s %s\\n' $d $f > usr/lib/d$d/f$f; done; done",
)


def make_artifact(path: Path, size_mb: int) -> str:
    """A tar.gz of ``size_mb`` MB: 50 files of random (incompressible) data plus an app file."""
    per_file = size_mb * (1 << 20) // 50
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for index in range(50):
            data = os.urandom(per_file)
            info = tarfile.TarInfo(f"lib/part{index:02d}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        app = b"print('hello')\n"
        info = tarfile.TarInfo("app.py")
        info.size = len(app)
        tar.addfile(info, io.BytesIO(app))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


def bench_baker(home: Path, artifact: Path, sha: str, rounds: int) -> dict[str, Any]:
    baker = LocalBaker(images=ImageStore(home), clock=lambda: datetime.now(UTC), timeout=300)
    base_times = []
    for _ in range(max(1, rounds // 2)):
        started = time.perf_counter()
        baker.bake_base(steps=BASE_STEPS, log=lambda _line: None)
        base_times.append(time.perf_counter() - started)
    service_times = []
    for index in range(rounds):
        started = time.perf_counter()
        baker.bake_service(
            app="bench",
            version=f"1.0.{index}",
            artifact=artifact,
            sha256=sha,
            bake_commands=["echo {{version}} > opt/bench/VERSION"],
            start_command="exec python3 opt/bench/app.py",
            log=lambda _line: None,
        )
        service_times.append(time.perf_counter() - started)
    return {"base_bake_ms": median_ms(base_times), "service_bake_ms": median_ms(service_times)}


def bench_api(home: Path, artifact: Path, sha: str, rounds: int) -> dict[str, Any]:
    import httpx
    import uvicorn

    from klink.server import create_app
    from klink.service.runtime import Runtime
    from klink.settings import Settings

    port = free_port()
    settings = Settings.from_env(
        {
            "KLINK_HOME": str(home),
            "KLINK_ENGINE": "0",
            "KLINK_SCHEDULES": "0",
            "KLINK_LISTEN": f"127.0.0.1:{port}",
        }
    )
    runtime = Runtime.open(settings)
    services = ["auth", "metadata", "build", "bake"]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime, services), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    token = settings.admin_token_path.read_text().strip()
    times = []
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=300,
        ) as http:
            http.put("/metadata/environments/dev", json={"metadata": {"provider": "local"}})
            http.put(
                "/metadata/applications/bench",
                json={
                    "metadata": {
                        "contact": "bench@example.com",
                        "startCommand": "exec python3 opt/bench/app.py",
                        "bakeCommands": ["echo {{version}} > opt/bench/VERSION"],
                    }
                },
            )
            _drain(http, "/bake/base", {})
            for index in range(rounds):
                version = f"2.0.{index}"
                with open(artifact, "rb") as body:
                    answer = http.put(
                        f"/build/artifacts/bench/{version}",
                        content=body.read(),
                        headers={"X-Checksum-Sha256": sha},
                    )
                    answer.raise_for_status()
                started = time.perf_counter()
                _drain(http, f"/bake/images/bench/{version}", {})
                times.append(time.perf_counter() - started)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.close()
    return {"api_service_bake_ms": median_ms(times)}


def _drain(http: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    final: dict[str, Any] = {}
    with http.stream("POST", path, json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.strip():
                continue
            event = json.loads(line)
            if "log" not in event:
                final = event
    if "result" not in final:
        raise RuntimeError(f"bake failed: {final}")
    return final


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-mb", type=int, default=50)
    args = parser.parse_args()
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="klink-bench-bake-") as temp:
        tmp = Path(temp)
        artifact = tmp / "bench.tar.gz"
        sha = make_artifact(artifact, args.size_mb)
        size_mb = round(artifact.stat().st_size / (1 << 20), 1)
        baker = bench_baker(tmp / "home-baker", artifact, sha, args.rounds)
        api = bench_api(tmp / "home-api", artifact, sha, args.rounds)
    result = {
        "benchmark": "bake_local",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            # The cores are shared: the load during the run says how much of them it had.
            "load_average_1m_before": load_before,
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        },
        "rounds": args.rounds,
        "artifact_mb": size_mb,
        "base_files": 4000,
        **baker,
        **api,
        "target_service_bake_ms": 1000,
    }
    print(f"artifact            {size_mb} MB (gzip of random data, 51 files)")
    print(f"base bake           {result['base_bake_ms']:8.1f} ms  (4000-file base tree)")
    print(f"service bake        {result['service_bake_ms']:8.1f} ms  (baker alone)")
    print(f"service bake (API)  {result['api_service_bake_ms']:8.1f} ms  (fetch over HTTP + bake)")
    print("target              ~1000 ms for the service bake")
    load_after = result["machine"]["load_average_1m_after"]
    print(f"load average        {load_before} before, {load_after} after")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
