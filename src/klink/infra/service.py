"""The service's use cases: fetch the definition and the environment, then plan or apply.

The definition comes from the config service (``infrastructure.yaml`` at a commit), the
environment record from the metadata service, the provider from the record. Applies are
serialised per app+env by a lock row and recorded (who, commit, actions, result) whether they
succeed or not.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from klink.config.client import ConfigClient
from klink.errors import Conflict, NotFound
from klink.infra import store
from klink.infra.apply import apply_plan
from klink.infra.live import Cloud, cloud_for
from klink.infra.model import FILE_NAME
from klink.infra.plan import Plan
from klink.infra.reconcile import plan_for
from klink.metadata.client import MetadataClient
from klink.providers import build_provider
from klink.service.runtime import Runtime


@dataclass(frozen=True)
class Shown:
    """A plan with the commit of the definition it was computed from."""

    commit: str
    plan: Plan

    def to_json(self) -> dict[str, Any]:
        return {"commit": self.commit, **self.plan.to_json()}


def environment(runtime: Runtime, env: str) -> Mapping[str, Any]:
    record = MetadataClient(runtime.http("metadata")).environment(env)
    metadata: Mapping[str, Any] = record["metadata"]
    return metadata


def definition_at(runtime: Runtime, app: str, env: str, at: str) -> tuple[str, Any]:
    """(commit, parsed ``infrastructure.yaml``) at ``at``; NotFound when the file is absent."""
    try:
        return ConfigClient(runtime.http("config")).file(app, env, FILE_NAME, at)
    except NotFound as exc:
        raise NotFound(
            f"no {FILE_NAME} for {app} in {env} at {at} ({exc.message})", field="at"
        ) from None


@contextmanager
def open_cloud(runtime: Runtime, env: str, metadata: Mapping[str, Any]) -> Iterator[Cloud]:
    provider = build_provider(env, metadata, runtime.settings)
    try:
        yield cloud_for(provider, metadata)
    finally:
        provider.close()


def plan(runtime: Runtime, app: str, env: str, at: str = "HEAD") -> Shown:
    metadata = environment(runtime, env)
    commit, data = definition_at(runtime, app, env, at)
    with open_cloud(runtime, env, metadata) as cloud:
        return Shown(commit, plan_for(data, app, env, metadata, cloud))


def apply(
    runtime: Runtime,
    app: str,
    env: str,
    *,
    actor: str,
    at: str = "HEAD",
    plan_hash: str | None = None,
) -> dict[str, Any]:
    """Plan from live state again, check ``plan_hash``, apply, record; the history entry."""
    metadata = environment(runtime, env)
    commit, data = definition_at(runtime, app, env, at)
    holder = f"{actor}:{uuid.uuid4().hex[:8]}"
    store.acquire(runtime.engine, app, env, holder, runtime.clock())
    try:
        with open_cloud(runtime, env, metadata) as cloud:
            current = plan_for(data, app, env, metadata, cloud)
            if plan_hash is not None and current.plan_hash != plan_hash:
                raise Conflict(
                    "the plan changed since it was shown (the definition or live state moved); "
                    "look at the new plan and apply that",
                    field="plan_hash",
                )
            apply_id = store.start_apply(
                runtime.engine, current, actor=actor, commit=commit, now=runtime.clock()
            )
            result = apply_plan(current, cloud)
            store.finish_apply(runtime.engine, apply_id, result, runtime.clock())
    finally:
        store.release(runtime.engine, app, env, holder)
    entries = [h for h in store.history(runtime.engine, app, env, 5) if h["id"] == apply_id]
    return entries[0]
