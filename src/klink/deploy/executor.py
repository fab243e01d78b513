"""One executor runs a plan's steps; a display-only executor runs the same code for a dry run.

``Executor.run`` looks an action up (an unknown one is refused), runs it, and decides what its
errors mean: the engine's one retry layer. Waits and errors are apart:

- a wait (an action returning ``RetryAfter``) has a deadline on the clock, which the action
  checks itself from the time it first ran (``Context.waited``) and its group's health gate;
- an error of the transient class (``errors.is_transient``: throttling, an unreachable or
  failing service) has its own budget of consecutive errors with jittered exponential backoff
  (``RetryPolicy``); any normal outcome resets it, so one ``Throttled`` late in a long wait
  never fails a deployment. A budget spent, or any other error, is a failure.

``DisplayOnlyExecutor`` (after aws/chalice's) runs the actions that only read — the
preparation — and shows every other step without running it, so ``--dry-run`` is the same run,
not a copy of it.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime

from klink.deploy.actions.registry import Action, actions
from klink.deploy.context import Context, Services
from klink.deploy.model import Deployment, Done, Failed, Outcome, RetryAfter, Step
from klink.errors import KlinkError, is_transient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    budget: int = 8  # consecutive transient errors of one action before it fails
    base: float = 1.0
    cap: float = 30.0
    jitter: float = 0.5  # a share of the delay drawn at random, so retries do not align

    def backoff(self, errors: int, rand: float | None = None) -> float:
        delay = min(self.cap, self.base * 2.0 ** max(0, errors - 1))
        r = random.random() if rand is None else rand  # noqa: S311 - jitter, not a secret
        return delay * (1.0 - self.jitter * r)


@dataclass
class StepResult:
    outcome: Outcome
    logs: list[str] = field(default_factory=list)
    errors: int = 0  # consecutive transient errors of this action so far
    ran: bool = True  # False: shown, not run (display-only)


class Executor:
    """Runs one step of a deployment against the services; used by the engine."""

    def __init__(self, services: Services, retry: RetryPolicy | None = None) -> None:
        self.services = services
        self.retry = retry or RetryPolicy()
        self.registry: dict[str, Action] = actions()

    def runs(self, action: Action) -> bool:
        return True

    def run(
        self,
        d: Deployment,
        step: Step,
        *,
        attempt: int = 1,
        errors: int = 0,
        started_at: datetime | None = None,
    ) -> StepResult:
        found = self.registry.get(step.name)
        if found is None:
            return StepResult(Failed(f"unknown action {step.name!r}"), errors=errors)
        if not self.runs(found):
            return StepResult(Done(), ran=False)
        ctx = Context(d, self.services, step, attempt=attempt, started_at=started_at)
        try:
            outcome = found.run(ctx)
        except KlinkError as exc:
            return StepResult(self._error(exc, errors), ctx.logs, errors + 1)
        except Exception as exc:
            log.exception("action %s of deployment %s", step.name, d.id)
            return StepResult(Failed(f"{step.name}: unexpected {type(exc).__name__}: {exc}"))
        return StepResult(outcome, ctx.logs, 0)

    def _error(self, exc: KlinkError, errors: int) -> Outcome:
        if not is_transient(exc):
            return Failed(exc.message)
        spent = errors + 1
        if spent > self.retry.budget:
            return Failed(f"{exc.message} (gave up after {spent} errors in a row)")
        delay = self.retry.backoff(spent)
        return RetryAfter(delay, f"{exc.message} (error {spent} of {self.retry.budget}; again)")


class DisplayOnlyExecutor(Executor):
    """Runs only the actions that read; every other step is shown, not run."""

    def runs(self, action: Action) -> bool:
        return action.reads
