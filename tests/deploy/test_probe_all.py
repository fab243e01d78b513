"""The instance health gate probes every instance at once, not one after another."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

from klink.deploy.actions.health import probe_all


def test_probes_run_concurrently_and_keep_their_order() -> None:
    lock = threading.Lock()
    running = peak = 0

    def probe(url: str) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return url.endswith("/ok")

    ctx: Any = SimpleNamespace(services=SimpleNamespace(probe=probe))
    urls = [f"http://127.16.0.{i}:8080/{'ok' if i % 2 else 'bad'}" for i in range(1, 9)]
    assert probe_all(ctx, urls) == [True, False] * 4
    assert peak == 8
    assert probe_all(ctx, []) == []
