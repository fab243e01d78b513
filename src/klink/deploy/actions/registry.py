"""The action registry: action name -> function of a Context returning an Outcome.

An action is declared with what it does to the world: ``reads`` (preparation's reads: the dry
run runs them for real) or not (it changes the cloud or sends a message: the dry run shows it
without running it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from klink.deploy.context import Context
from klink.deploy.model import Outcome

ActionFn = Callable[[Context], Outcome]


@dataclass(frozen=True)
class Action:
    name: str
    run: ActionFn
    reads: bool  # True: only reads; safe to run in a dry run


REGISTRY: dict[str, Action] = {}
_MODULES = (
    "prepare",
    "discover",
    "launch",
    "health",
    "traffic",
    "retire",
    "notify",
    "resize",
    "weights",
    "gates",
    "canary",
)


def action(name: str, *, reads: bool = False) -> Callable[[ActionFn], ActionFn]:
    def register(fn: ActionFn) -> ActionFn:
        if name in REGISTRY:
            raise RuntimeError(f"action {name!r} registered twice")
        REGISTRY[name] = Action(name, fn, reads)
        return fn

    return register


def actions() -> dict[str, Action]:
    """Every action, importing the modules that define them on first use."""
    for module in _MODULES:
        importlib.import_module(f"klink.deploy.actions.{module}")
    return REGISTRY
