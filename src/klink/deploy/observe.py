"""What an engine reports about its own work: claims, takeovers, actions, lost leases.

The engine calls one ``EngineObserver`` (no-op methods here); ``klink.deploy.metrics`` counts
these for Prometheus, and a test may add ``klink.testing.journal.ActionJournal`` to see every
action each worker process ran. ``Observers`` fans one call out to several. Observers must be
cheap and must not raise: they run on the engine's path, between the database and the cloud.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence


def worker_name() -> str:
    """This process's name in metrics and lease holders: host and pid, unique while it lives."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"  # a lease holder is 64 characters


class EngineObserver:
    def claimed(self, worker: str, deployment_id: str, latency: float, *, takeover: bool) -> None:
        """A deployment was claimed ``latency`` seconds after it was due; ``takeover``: its
        previous lease belonged to another holder and had expired."""

    def action_started(
        self, worker: str, holder: str, deployment_id: str, seq: int, attempt: int
    ) -> None:
        """An action is about to run (its cloud calls follow)."""

    def action_ended(
        self, worker: str, deployment_id: str, seq: int, attempt: int, outcome: str, seconds: float
    ) -> None:
        """An action returned ``outcome`` (done, waiting or failed) after ``seconds``."""

    def lease_lost(self, worker: str, deployment_id: str, reason: str) -> None:
        """The engine stopped working on a deployment whose lease it no longer holds."""


class Observers(EngineObserver):
    def __init__(self, observers: Sequence[EngineObserver]) -> None:
        self.observers = list(observers)

    def claimed(self, worker: str, deployment_id: str, latency: float, *, takeover: bool) -> None:
        for o in self.observers:
            o.claimed(worker, deployment_id, latency, takeover=takeover)

    def action_started(
        self, worker: str, holder: str, deployment_id: str, seq: int, attempt: int
    ) -> None:
        for o in self.observers:
            o.action_started(worker, holder, deployment_id, seq, attempt)

    def action_ended(
        self, worker: str, deployment_id: str, seq: int, attempt: int, outcome: str, seconds: float
    ) -> None:
        for o in self.observers:
            o.action_ended(worker, deployment_id, seq, attempt, outcome, seconds)

    def lease_lost(self, worker: str, deployment_id: str, reason: str) -> None:
        for o in self.observers:
            o.lease_lost(worker, deployment_id, reason)
