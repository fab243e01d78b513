"""Starting the local cloud with ``klink serve``.

When an environment uses the local provider and this ``KLINK_HOME`` has no running daemon,
``klink serve`` starts one, detached in its own session, so that instances and traffic outlive
the server. When no environment uses it, this costs one small query and imports nothing more.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("klink.local")


def start_if_used(runtime: Any) -> str | None:
    """The daemon's URL when an environment is on the local provider (started if needed)."""
    from klink.metadata.store import MetadataStore

    local_envs = MetadataStore(runtime.engine).all("environment", ("provider", "local"))
    if not local_envs:
        return None
    from klink.providers.local import daemon

    try:
        url = daemon.ensure(runtime.settings.home)
    except Exception as exc:  # the server still runs; deploys to local envs will say why
        log.warning("local cloud did not start: %s", exc)
        return None
    log.info("local cloud for %d environment(s) at %s", len(local_envs), url)
    return url
