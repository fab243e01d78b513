"""The web UI's way to the services: their HTTP clients, called with the visitor's token.

The UI is a client like the CLI: it never opens the database. ``Reads`` builds each service's
client over the runtime's shared connection (in one process: this server's own socket; split:
``KLINK_<SERVICE>_URL``), sending the signed-in person's token, so the services decide what
this person may read. The calls are synchronous; pages run in the server's thread pool.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from klink.auth.client import AuthClient
from klink.bake.client import BakeClient
from klink.config.client import ConfigClient
from klink.deploy.client import DeployClient
from klink.errors import KlinkError
from klink.infra.client import InfraClient
from klink.metadata.client import MetadataClient
from klink.service.runtime import Runtime


@dataclass(frozen=True)
class Reads:
    runtime: Runtime
    token: str

    @property
    def auth(self) -> AuthClient:
        return AuthClient(self.runtime.http("auth"), self.token)

    @property
    def metadata(self) -> MetadataClient:
        return MetadataClient(self.runtime.http("metadata"), self.token)

    @property
    def deploy(self) -> DeployClient:
        return DeployClient(self.runtime.http("deploy"), self.token)

    @property
    def config(self) -> ConfigClient:
        return ConfigClient(self.runtime.http("config"), self.token)

    @property
    def bake(self) -> BakeClient:
        return BakeClient(self.runtime.http("bake"), self.token)

    @property
    def infra(self) -> InfraClient:
        return InfraClient(self.runtime.http("infra"), self.token)

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        """The record, its tasks and its log, in one shape for the deployment page."""
        record, tasks, logs = together(
            lambda: self.deploy.deployment(deployment_id),
            lambda: self.deploy.tasks(deployment_id),
            lambda: self.deploy.logs(deployment_id),
        )
        return {"d": record, "tasks": tasks["tasks"], "logs": logs["logs"]}


# Reads of one page run side by side, so that their waits (sockets, git, the provider) overlap;
# in the one-process server the services' own CPU work still adds up. No call made through the
# pool uses the pool itself, so it cannot deadlock.
_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="klink-web-read")

# Pages run in threads of their own, not in the server's thread pool: in the one-process server
# the services a page calls answer from that pool (their endpoints are synchronous), so pages
# that held its threads while waiting on them could, enough at once, leave them none.
_PAGES = ThreadPoolExecutor(max_workers=16, thread_name_prefix="klink-web-page")
P = ParamSpec("P")
R = TypeVar("R")


def offloaded(handler: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """A synchronous page handler as an asynchronous one that runs in the pages' threads
    (FastAPI reads the parameters through ``functools.wraps``)."""

    @functools.wraps(handler)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return await off(functools.partial(handler, *args, **kwargs))

    return run


async def off(call: Callable[[], R]) -> R:
    """``call()`` in the pages' threads, awaited."""
    return await asyncio.get_running_loop().run_in_executor(_PAGES, call)


def together(*calls: Callable[[], Any]) -> list[Any]:
    """The results of ``calls``, run at once; the error of the first (in the order given) that
    failed is raised."""
    futures = [_POOL.submit(call) for call in calls]
    return [f.result() for f in futures]


def optional(call: Any, *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """``(result, None)`` or ``(None, why)``: for parts of a page that may be unavailable
    (a provider that does not answer, a repository not created) while the rest still shows."""
    try:
        return call(*args, **kwargs), None
    except KlinkError as exc:
        if exc.status == 401:  # the session's token is no longer valid: sign in again
            raise
        return None, exc.message
