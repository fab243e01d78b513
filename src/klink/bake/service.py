"""The bake service's work: service and base bakes per target (images: ``inventory.py``).

Every bake is a job (``klink.build.jobs``) keyed by what it makes: ``("bake", app, version,
target)`` or ``("base", target)``. A second identical request joins the running job and gets
its result (an ``embargo`` given by the joiner is not applied: the first request's is); bakes
of different apps run side by side in their own threads. Artifacts come from the build service
over HTTP (``BuildClient``), checksum verified; environments from the metadata service.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from klink.bake.aws import AwsBaker
from klink.bake.local import DEFAULT_BASE_STEPS, LocalBaker
from klink.bake.targets import Target, choose, targets_of
from klink.build.client import BuildClient, HashingReader
from klink.build.jobs import Job, JobRegistry
from klink.errors import InvalidInput, KlinkError
from klink.metadata.client import MetadataClient
from klink.names import check_name, check_version
from klink.providers import build_provider
from klink.providers.base import Image, Provider
from klink.providers.local.images import ImageStore
from klink.service.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class BakeService:
    runtime: Runtime
    jobs: JobRegistry = field(default_factory=JobRegistry)
    # env name -> (its metadata as JSON, its provider): building a provider costs seconds
    # (boto3 clients), so providers are kept while their environment's record is unchanged.
    _providers: dict[str, tuple[str, Provider]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def provider(self, env: str, metadata: Mapping[str, Any]) -> Provider:
        key = json.dumps(metadata, sort_keys=True, default=str)
        with self._lock:
            cached = self._providers.get(env)
        if cached is not None and cached[0] == key:
            return cached[1]
        provider = build_provider(env, metadata, self.runtime.settings)
        with self._lock:
            # A provider replaced here may still be in use by another thread: not closed.
            self._providers[env] = (key, provider)
        return provider

    def forget(self, env: str) -> None:
        """Drop a cached provider that failed (e.g. a local cloud daemon that restarted)."""
        with self._lock:
            self._providers.pop(env, None)

    def close(self) -> None:
        with self._lock:
            providers = [p for _, p in self._providers.values()]
            self._providers.clear()
        for provider in providers:
            provider.close()

    @property
    def work_root(self) -> Path:
        return self.runtime.settings.home / "bake" / "work"

    # Collaborators ------------------------------------------------------------------------
    def metadata(self) -> MetadataClient:
        return MetadataClient(self.runtime.http("metadata"))

    def targets(self) -> dict[str, Target]:
        return targets_of(self.metadata().environments())

    def target(self, requested: str | None) -> Target:
        return choose(requested, self.targets())

    def local_baker(self) -> LocalBaker:
        return LocalBaker(
            images=ImageStore(self.runtime.settings.home),
            clock=self.runtime.clock,
            timeout=self.runtime.settings.bake_timeout_seconds,
        )

    def aws_baker(self, target: Target) -> AwsBaker:
        return AwsBaker(
            target=target,
            settings=self.runtime.settings,
            clock=self.runtime.clock,
            timeout=self.runtime.settings.bake_timeout_seconds,
            providers=self.provider,
        )

    # Service bakes ------------------------------------------------------------------------
    def prepare(
        self, app: str, version: str, target_name: str | None, embargo: Sequence[str]
    ) -> tuple[dict[str, Any], dict[str, Any], Target, list[str]]:
        """Check everything a bake needs before it starts (4xx answers, nothing started)."""
        check_name(app, "app")
        check_version(version)
        embargo = [check_name(e.strip(), "embargo") for e in embargo if e.strip()]
        app_metadata: dict[str, Any] = self.metadata().application(app).get("metadata") or {}
        commands = app_metadata.get("bakeCommands", [])
        if not isinstance(commands, list) or not all(isinstance(c, str) for c in commands):
            raise InvalidInput("bakeCommands must be a list of strings", field="bakeCommands")
        artifact = BuildClient(self.runtime.http("build")).artifact(app, version)
        target = self.target(target_name)
        self.newest_base(target)
        return app_metadata, artifact, target, embargo

    def newest_base(self, target: Target) -> Image:
        """The base image service bakes start from; NotFound (404) when there is none."""
        if target.provider == "local":
            return self.local_baker().newest_base()
        baker = self.aws_baker(target)
        try:
            return baker.newest_base()
        finally:
            baker.close()

    def dry_run(
        self, app: str, version: str, target_name: str | None, embargo: Sequence[str]
    ) -> dict[str, Any]:
        app_metadata, artifact, target, embargo = self.prepare(app, version, target_name, embargo)
        commands = app_metadata.get("bakeCommands", [])
        if target.provider == "local":
            base = self.local_baker().newest_base()
            plan = {
                "base_image": base.id,
                "unpack": f"opt/{app}/",
                "bake_commands": [c.replace("{{version}}", version) for c in commands],
                "start_command": app_metadata.get("startCommand"),
                "health_path": _health_path(app_metadata),
                "embargo": embargo,
            }
            return {"target": target.name, "plan": plan}
        baker = self.aws_baker(target)
        try:
            template = baker.service_template(
                app=app,
                version=version,
                artifact=self.work_root / "JOB" / artifact["filename"],
                sha256=artifact["sha256"],
                bake_commands=commands,
                embargo=embargo,
                at=self.runtime.clock(),
            )
        finally:
            baker.close()
        return {"target": target.name, "template": template}

    def start_bake(
        self, app: str, version: str, target_name: str | None, embargo: Sequence[str]
    ) -> tuple[Job, bool]:
        app_metadata, artifact, target, embargo = self.prepare(app, version, target_name, embargo)

        def work(job: Job) -> dict[str, Any]:
            folder = self.work_root / job.id
            folder.mkdir(parents=True, exist_ok=True)
            try:
                job.log(f"fetching {artifact['filename']} ({artifact['size']} bytes)")
                build = BuildClient(self.runtime.http("build"))
                if target.provider == "local":
                    # Unpacked as it downloads; checked whole before the image is made.
                    with build.stream(app, version) as reader:
                        image = self._bake_local(
                            app, version, reader, artifact["sha256"], app_metadata, embargo, job
                        )
                else:
                    path = folder / artifact["filename"]
                    sha256 = build.download(app, version, path)
                    image = self._bake_aws(
                        target, app, version, path, sha256, app_metadata, embargo, job
                    )
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            return {
                "image": image.id,
                "name": image.name,
                "target": target.name,
                "app": app,
                "version": version,
                "tags": dict(image.tags),
            }

        return self.jobs.start(("bake", app, version, target.name), work)

    def _bake_local(
        self,
        app: str,
        version: str,
        reader: HashingReader,
        sha256: str,
        app_metadata: dict[str, Any],
        embargo: list[str],
        job: Job,
    ) -> Image:
        return self.local_baker().bake_service(
            app=app,
            version=version,
            artifact=io.BufferedReader(reader, 1 << 20),
            sha256=sha256,
            verify=reader.verify,
            bake_commands=app_metadata.get("bakeCommands", []),
            start_command=str(app_metadata.get("startCommand") or ""),
            health_path=_health_path(app_metadata),
            embargo=embargo,
            log=job.log,
        )

    def _bake_aws(
        self,
        target: Target,
        app: str,
        version: str,
        path: Path,
        sha256: str,
        app_metadata: dict[str, Any],
        embargo: list[str],
        job: Job,
    ) -> Image:
        baker = self.aws_baker(target)
        try:
            template = baker.service_template(
                app=app,
                version=version,
                artifact=path,
                sha256=sha256,
                bake_commands=app_metadata.get("bakeCommands", []),
                embargo=embargo,
                at=self.runtime.clock(),
            )
            return baker.run(template, work=path.parent / "packer", log=job.log)
        finally:
            baker.close()

    # Base bakes ---------------------------------------------------------------------------
    def start_base(self, target_name: str | None) -> tuple[Job, bool]:
        target = self.target(target_name)
        if target.provider == "aws":
            # Checked now, so that a missing parentImage is a 400, not a failed job.
            probe = self.aws_baker(target)
            probe.base_template(self.runtime.clock())

        def work(job: Job) -> dict[str, Any]:
            if target.provider == "local":
                options = target.bake_options()
                steps = options.get("baseSteps", list(DEFAULT_BASE_STEPS))
                parent = options.get("parentImage")
                image = self.local_baker().bake_base(
                    steps=steps, parent=parent if isinstance(parent, str) else None, log=job.log
                )
            else:
                baker = self.aws_baker(target)
                folder = self.work_root / job.id
                try:
                    template = baker.base_template(self.runtime.clock())
                    image = baker.run(template, work=folder, log=job.log)
                finally:
                    baker.close()
                    shutil.rmtree(folder, ignore_errors=True)
            return {"image": image.id, "name": image.name, "target": target.name}

        return self.jobs.start(("base", target.name), work)

    def bake_all_bases(self, wait: Callable[[Job], object] = lambda job: job.wait()) -> None:
        for name in self.targets():
            try:
                job, _ = self.start_base(name)
            except KlinkError as exc:
                log.warning("scheduled base bake for %s not started: %s", name, exc.message)
                continue
            wait(job)
            if job.error:
                log.warning("scheduled base bake for %s failed: %s", name, job.error["message"])


def _health_path(app_metadata: dict[str, Any]) -> str:
    health = app_metadata.get("healthcheck")
    if isinstance(health, dict) and isinstance(health.get("path"), str):
        return str(health["path"])
    return "/healthcheck"
