"""Strategies: each composes a deployment's deployment phase, its undo and its failure path.

A strategy is a small object (``Strategy``) registered by name; ``strategy`` in
``deployment-params.json`` chooses it (default ``redblack``). It builds steps only — pure
functions of the validated parameters and the states — and never calls a cloud: the actions
its steps name do that. Adding a strategy is one module here plus the actions it needs (see
spinnaker/orca's ``Strategy``: a strategy composes stages, it does not run them).
"""

from __future__ import annotations

from typing import Protocol

from klink.config.params import DeploymentParams
from klink.deploy.model import GroupState, Step
from klink.errors import InvalidInput


class Strategy(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str:
        """One line, shown by the dry run and the deployment log."""
        ...

    def deployment_steps(
        self,
        params: DeploymentParams,
        previous: GroupState | None,
        *,
        instructions: str | None = None,
    ) -> tuple[Step, ...]:
        """The deployment phase, from the params and the previous state (None: first)."""
        ...

    def undo_steps(self, restore: GroupState | None, remove: GroupState | None) -> tuple[Step, ...]:
        """Put ``restore`` back in traffic (each group checked with its own recorded health
        gate) and take ``remove`` away."""
        ...

    def on_failure(self, params: DeploymentParams) -> str:
        """What runs when the deployment phase fails: ``"undo"`` or ``"hold"`` (wait for a
        person: undo, retry or unlock)."""
        ...


def strategy_of(name: str) -> Strategy:
    from klink.deploy.strategies import canary, redblack, rolling

    strategies = (redblack.STRATEGY, rolling.STRATEGY, canary.STRATEGY)
    known: dict[str, Strategy] = {s.name: s for s in strategies}
    found = known.get(name)
    if found is None:
        raise InvalidInput(
            f"unknown strategy {name!r}; known: {', '.join(sorted(known))}", field="strategy"
        )
    return found
