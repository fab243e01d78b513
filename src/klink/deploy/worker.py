"""``klink worker``: the deployment engine alone, sharing the database with ``klink serve``.

Several workers (and servers) may run against one database: leases decide who runs what.
SIGTERM and SIGINT stop it after the running actions; a killed worker's deployments are
taken over when their leases expire.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from klink.deploy.engine import Engine, EngineThreads
from klink.deploy.services import runtime_services
from klink.deploy.store import DeploymentStore
from klink.service.runtime import Runtime
from klink.settings import Settings


def run_worker(settings: Settings, stop: threading.Event | None = None) -> None:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    runtime = Runtime.open(settings)
    stop = stop or threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    runner = EngineThreads(
        lambda: Engine(
            DeploymentStore(runtime.engine),
            runtime_services(runtime),
            lease_seconds=settings.lease_seconds,
        ),
        settings.engine_workers,
    )
    runner.start()
    try:
        stop.wait()
    finally:
        runner.stop()
        runtime.close()
