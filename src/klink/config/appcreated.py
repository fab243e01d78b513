"""When an application is created, create its config repositories.

The metadata service runs ``create_config_repos`` after creating an application. It reads the
environments from the metadata store directly and asks the config service (through its HTTP
client) for a repository in each environment whose metadata says ``createConfigRepo: true``.
With no such environment it makes no call at all. A failure is logged and does not undo the
application: ``POST /config/repos/{app}/{env}`` (idempotent) creates the repository later.
"""

from __future__ import annotations

import logging

from klink.config.client import ConfigClient
from klink.metadata.store import MetadataStore, Record
from klink.service.runtime import Runtime

log = logging.getLogger(__name__)


def create_config_repos(runtime: Runtime, record: Record) -> None:
    environments = [
        env.name
        for env in MetadataStore(runtime.engine).all("environment")
        if env.metadata.get("createConfigRepo") is True
    ]
    if not environments:
        return
    client = ConfigClient(runtime.http("config"))
    for env in environments:
        try:
            client.create_repo(record.name, env)
        except Exception:
            log.exception(
                "could not create the config repository %s-%s; "
                "POST /config/repos/%s/%s creates it later",
                record.name,
                env,
                record.name,
                env,
            )
