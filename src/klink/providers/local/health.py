"""The local cloud's health, for the services that use it (deploy, infra): this home's daemon
answers ``/health``, or none runs and one can start when first used (HAProxy is there)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path


def healthy(home: Path, needed: Callable[[], bool]) -> bool:
    """True when no local environment exists (``needed`` false) or the daemon is fine."""
    if not needed():
        return True
    from klink.providers.local import daemon

    info = daemon.running(home)
    if info is None:
        return shutil.which("haproxy") is not None
    import httpx

    return httpx.get(f"{info['url']}/health", timeout=2.0).status_code == 200
