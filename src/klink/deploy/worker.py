"""``klink worker``: the deployment engine alone, sharing the database with ``klink serve``.

Several workers (and servers) may run against one database: leases decide who runs what.
SIGTERM and SIGINT stop it after the running actions; a killed worker's deployments are
taken over when their leases expire. Each worker also watches for stuck deployments
(``klink.deploy.stuck``; every episode is reported once whatever the number of watchers) and,
with ``KLINK_WORKER_METRICS=HOST:PORT``, serves its Prometheus metrics there.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from klink.deploy.engine import Engine, EngineThreads
from klink.deploy.metrics import ENGINE_METRICS, watch
from klink.deploy.observe import EngineObserver, Observers
from klink.deploy.services import runtime_services
from klink.deploy.store import DeploymentStore
from klink.deploy.stuck import StuckScheduler
from klink.service.runtime import Runtime
from klink.settings import Settings, parse_listen


def run_worker(
    settings: Settings,
    stop: threading.Event | None = None,
    *,
    observers: Sequence[EngineObserver] = (),
) -> None:
    """Run engines until ``stop``; ``observers`` see every claim and action (metrics always)."""
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
    observer = Observers([ENGINE_METRICS, *observers])
    runner = EngineThreads(
        lambda: Engine(
            DeploymentStore(runtime.engine),
            runtime_services(runtime),
            lease_seconds=settings.lease_seconds,
            observer=observer,
        ),
        settings.engine_workers,
    )
    stuck = StuckScheduler(
        lambda: runtime_services(runtime), runtime.engine, settings.stuck_seconds
    )
    server = None
    if settings.worker_metrics_listen:
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry()
        watch(registry, runtime)
        host, port = parse_listen(settings.worker_metrics_listen)
        server, _thread = start_http_server(port, host, registry)
    runner.start()
    if settings.schedules_enabled:
        stuck.start()
    try:
        stop.wait()
    finally:
        stuck.stop()
        runner.stop()
        if server is not None:
            server.shutdown()
        runtime.close()
