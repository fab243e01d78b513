"""Run the example service (examples/hello) as a real process on loopback, with properties."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import free_port

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello" / "hello.py"


def start(root: Path, properties: Mapping[str, object], version: str) -> subprocess.Popen[bytes]:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    lines = [f"{key}={value}" for key, value in properties.items()]
    (root / "etc" / "hello.properties").write_text("\n".join(lines) + "\n")
    env = {"KLINK_ROOT": str(root), "KLINK_INSTANCE_IP": "127.0.0.1", "KLINK_VERSION": version}
    return subprocess.Popen(
        [sys.executable, str(HELLO)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


@contextmanager
def running(
    root: Path, version: str = "1.0", **properties: object
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The service listening on a free port; yields (base URL, process)."""
    port = free_port()
    process = start(root, {"service.port": port, **properties}, version)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/healthcheck", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the example service did not start") from None
                time.sleep(0.05)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
