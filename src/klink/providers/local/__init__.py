"""The local provider: Klink's embedded cloud on one machine.

Images are immutable file trees (``images.py``), instances are real processes on their own
loopback addresses, the load balancer is a real HAProxy. A daemon (``klink local-cloud``,
``daemon.py``) owns instances and HAProxy so that they outlive the orchestrator; the provider
class (``provider.py``) calls its HTTP API. Images are plain files and usable without the daemon.

``LocalProvider`` is imported lazily so that ``klink.providers.local.images`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from klink.providers.local.provider import LocalProvider

__all__ = ["LocalProvider"]


def __getattr__(name: str) -> Any:
    if name == "LocalProvider":
        from klink.providers.local.provider import LocalProvider

        return LocalProvider
    raise AttributeError(name)
