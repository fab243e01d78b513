"""RSS of ``klink serve`` (every service and the engine) and of the local cloud daemon, idle and
during a deployment.

The whole platform runs as in production. Figures: resident set size (``VmRSS`` of
``/proc/PID/status``) of the server process and, separately, of the local cloud daemon (HAProxy
and instances are their own processes and not counted): right after start-up; idle once
``hello`` is set up and deployed (after a build and a bake through the APIs, so every service
has done real work); and the peak, sampled every 50 ms, during a red-black deployment of 4
instances. Target: klink serve <= 200 MB.

    .venv/bin/python bench/memory.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.benchkit import load_average, make_image, set_capacity, table, write_result
from tests.e2e.platform import Platform, git, local_hello

from klink.providers.local import daemon

TARGET_MB = 200.0
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hello"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Peak:
    """The highest RSS of each pid, sampled in a thread until ``stop()``."""

    def __init__(self, pids: dict[str, int], interval: float = 0.05) -> None:
        self.pids, self.interval = pids, interval
        self.peak = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss_mb(pid))
            time.sleep(self.interval)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak


def build_and_bake(platform: Platform, work: Path) -> None:
    """A real build and bake of examples/hello through the APIs."""
    source = work / "hello-src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("dist", "__pycache__"))
    git(["init", "-q", "-b", "main"], source)
    git(["add", "-A"], source)
    git(["commit", "-q", "-m", "hello"], source)
    meta = {
        "srcRepo": str(source),
        "buildCommand": "sh build.sh",
        "startCommand": "cd opt/hello && exec python3 hello.py",
    }
    for key, value in meta.items():
        platform.call("PUT", f"/metadata/applications/hello/{key}", json={"value": value})
    version = platform.stream("/build/builds/hello", {})["result"]["version"]
    platform.stream("/bake/base", {"target": "local"})
    baked = platform.stream(f"/bake/images/hello/{version}", {"target": "local"})
    if "result" not in baked:
        raise SystemExit(f"bake failed: {baked}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="klink-bench-memory-") as temp:
        work = Path(temp)
        platform = Platform(work / "platform")
        try:
            platform.start()
            assert platform.process is not None
            serve = platform.process.pid
            time.sleep(1.0)
            started = rss_mb(serve)
            local_hello(platform, {})
            info = daemon.running(platform.home)
            if info is None:
                raise SystemExit("the local cloud daemon is not running")
            pids = {"klink serve": serve, "local cloud daemon": int(info["pid"])}
            build_and_bake(platform, work)
            set_capacity(platform, 4)
            first = platform.deploy("hello", "dev", make_image(platform.home, "1.0", work))
            platform.wait(first, 120)
            time.sleep(2.0)
            idle = {name: rss_mb(pid) for name, pid in pids.items()}
            load = load_average()
            peak = Peak(pids)
            second = platform.deploy("hello", "dev", make_image(platform.home, "2.0", work))
            status = platform.wait(second, 120)["status"]
            during = peak.stop()
            if status != "completed":
                raise SystemExit(f"the measured deployment ended {status}")
        finally:
            platform.close()
    results = [
        {
            "process": name,
            "after_start_mb": started if name == "klink serve" else None,
            "idle_mb": idle[name],
            "peak_during_deploy_mb": during[name],
        }
        for name in pids
    ]
    print(
        table(
            ["process", "after start MB", "idle MB", "peak in deploy MB"],
            [
                [r["process"], r["after_start_mb"] or "-", r["idle_mb"], r["peak_during_deploy_mb"]]
                for r in results
            ],
        )
    )
    met = max(idle["klink serve"], during["klink serve"]) <= TARGET_MB
    print(f"target klink serve <= {TARGET_MB:.0f} MB: {'met' if met else 'MISSED'}")
    path = write_result(
        "memory",
        {
            "load_average": load,
            "measure": "VmRSS; idle = after a build, bake and a 4-instance deploy; peak sampled "
            "every 50 ms during a 4-instance red-black deploy",
            "target": f"klink serve <= {TARGET_MB:.0f} MB",
            "target_met": met,
            "results": results,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
