"""The action registry: action name -> function of a Context returning an Outcome."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from klink.deploy.context import Context
from klink.deploy.model import Outcome

Action = Callable[[Context], Outcome]
REGISTRY: dict[str, Action] = {}
_MODULES = ("prepare", "discover", "launch", "health", "traffic", "retire", "notify")


def action(name: str) -> Callable[[Action], Action]:
    def register(fn: Action) -> Action:
        if name in REGISTRY:
            raise RuntimeError(f"action {name!r} registered twice")
        REGISTRY[name] = fn
        return fn

    return register


def actions() -> dict[str, Action]:
    """Every action, importing the modules that define them on first use."""
    for module in _MODULES:
        importlib.import_module(f"klink.deploy.actions.{module}")
    return REGISTRY
