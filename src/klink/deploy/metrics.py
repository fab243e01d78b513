"""Prometheus metrics for operators of the deployment engine.

Two collectors. ``EngineMetrics`` counts what this process's engines do (an ``EngineObserver``),
labelled by ``worker`` (host:pid): claims and their latency (due → claimed), lease takeovers,
leases given up, actions run by outcome (done, waiting, failed) and their duration. One per
process, ``ENGINE_METRICS``, the default observer of every engine. ``DeploymentMetrics`` reads
the database at scrape time, so any process shows the whole fleet: deployments by status,
leases held per worker, and stuck deployments (``klink.deploy.stuck``) by kind. The deploy
service's ``/metrics`` serves both; ``klink worker`` serves them on ``KLINK_WORKER_METRICS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from klink import store
from klink.deploy.model import ACTIVE, STATUSES
from klink.deploy.observe import EngineObserver
from klink.deploy.tables import deployments

if TYPE_CHECKING:
    from klink.service.runtime import Runtime

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class EngineMetrics(EngineObserver, Collector):
    def __init__(self) -> None:
        self.claims = Counter(
            "klink_engine_claims", "Deployments claimed", ["worker"], registry=None
        )
        self.takeovers = Counter(
            "klink_engine_lease_takeovers",
            "Claims of a deployment whose previous holder's lease had expired",
            ["worker"],
            registry=None,
        )
        self.leases_lost = Counter(
            "klink_engine_leases_lost",
            "Deployments an engine stopped working on because its lease may be gone",
            ["worker"],
            registry=None,
        )
        self.claim_latency = Histogram(
            "klink_engine_claim_latency_seconds",
            "From when a deployment was due to when an engine claimed it",
            ["worker"],
            buckets=_LATENCY_BUCKETS,
            registry=None,
        )
        self.actions = Counter(
            "klink_engine_actions",
            "Actions run, by outcome (done, waiting, failed)",
            ["worker", "outcome"],
            registry=None,
        )
        self.action_seconds = Histogram(
            "klink_engine_action_seconds",
            "How long an action ran (its cloud calls), not counting the write after it",
            ["worker"],
            buckets=_LATENCY_BUCKETS,
            registry=None,
        )

    def claimed(self, worker: str, deployment_id: str, latency: float, *, takeover: bool) -> None:
        self.claims.labels(worker).inc()
        self.claim_latency.labels(worker).observe(latency)
        if takeover:
            self.takeovers.labels(worker).inc()

    def action_ended(
        self, worker: str, deployment_id: str, seq: int, attempt: int, outcome: str, seconds: float
    ) -> None:
        self.actions.labels(worker, outcome).inc()
        self.action_seconds.labels(worker).observe(seconds)

    def lease_lost(self, worker: str, deployment_id: str, reason: str) -> None:
        self.leases_lost.labels(worker).inc()

    def collect(self) -> Iterator[Metric]:
        for metric in (
            self.claims,
            self.takeovers,
            self.leases_lost,
            self.claim_latency,
            self.actions,
            self.action_seconds,
        ):
            yield from metric.collect()


ENGINE_METRICS = EngineMetrics()


class DeploymentMetrics(Collector):
    """Gauges read from the database at scrape time (one short query each)."""

    def __init__(
        self,
        engine: sa.engine.Engine,
        clock: Callable[[], datetime],
        stuck_seconds: float,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.stuck_seconds = stuck_seconds

    def collect(self) -> Iterator[Metric]:
        from klink.deploy.stuck import find_stuck

        now = self.clock()
        with store.read(self.engine) as conn:
            by_status: dict[str, int] = dict(
                conn.execute(
                    sa.select(deployments.c.status, sa.func.count()).group_by(deployments.c.status)
                ).all()
            )
            holders = conn.execute(
                sa.select(deployments.c.lease_holder, sa.func.count())
                .where(deployments.c.status.in_(ACTIVE), deployments.c.lease_expires >= now)
                .group_by(deployments.c.lease_holder)
            ).all()
        status = GaugeMetricFamily("klink_deployments", "Deployments by status", labels=["status"])
        for name in STATUSES:
            status.add_metric([name], float(by_status.get(name, 0)))
        yield status
        held = GaugeMetricFamily(
            "klink_deployments_leased",
            "Deployments whose lease a worker holds right now",
            labels=["worker"],
        )
        per_worker: dict[str, int] = {}
        for holder, count in holders:
            worker = str(holder).rsplit("-", 1)[0]  # holder = worker + "-" + engine thread id
            per_worker[worker] = per_worker.get(worker, 0) + int(count)
        for worker, count in sorted(per_worker.items()):
            held.add_metric([worker], float(count))
        yield held
        stuck = GaugeMetricFamily(
            "klink_deployments_stuck",
            f"Deployments without progress for longer than {self.stuck_seconds:g}s, by kind",
            labels=["kind"],
        )
        kinds = {"waiting": 0, "unclaimed": 0}
        for report in find_stuck(self.engine, now, self.stuck_seconds):
            kinds[report.kind] = kinds.get(report.kind, 0) + 1
        for kind, count in sorted(kinds.items()):
            stuck.add_metric([kind], float(count))
        yield stuck


def watch(registry: CollectorRegistry, runtime: Runtime) -> None:
    """Serve this process's engine metrics and the fleet's gauges from ``registry``."""
    registry.register(ENGINE_METRICS)
    registry.register(
        DeploymentMetrics(runtime.engine, runtime.clock, runtime.settings.stuck_seconds)
    )
