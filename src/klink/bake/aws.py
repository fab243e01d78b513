"""Baking AMIs with Packer for one ``aws:REGION`` target.

The target's first environment (by name) gives the provider (``build_provider``: boto3 stays
in ``providers/aws``) and the ``bake`` options (``bake`` metadata object: ``parentImage``,
``baseSteps``, ``baseImage`` (pins the base of service bakes), ``instanceType``,
``sshUsername``, ``subnetId``, ``communicator``, ``startRetryTimeout``). The newest AMI
tagged ``klink:role=base`` is the source of service bakes. After a bake the AMI is shared
with the accounts of the target's environments (launch permissions) and its tags are copied
into each of them. A failed bake deregisters every AMI Packer reported creating, and any AMI
of the bake's (unique) name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from klink.bake import packer
from klink.bake.local import service_tags, stamp
from klink.bake.targets import Target
from klink.errors import InvalidInput, KlinkError, NotFound
from klink.names import image_name
from klink.providers import build_provider
from klink.providers.base import (
    TAG_BAKED_AT,
    TAG_MANAGED_BY,
    TAG_ROLE,
    Image,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_STEPS = (
    "sudo mkdir -p /opt /etc/klink /var/log/klink",
    'echo "klink base image baked-at=$KLINK_BAKED_AT" | sudo tee /etc/klink/base',
)


@dataclass
class AwsBaker:
    target: Target
    settings: Any
    clock: Callable[[], datetime]
    timeout: float
    # env name, env metadata -> provider; shared (cached) providers are not closed here.
    providers: Callable[[str, Mapping[str, Any]], Any] | None = None

    def __post_init__(self) -> None:
        env, metadata = self.target.first_env
        self.env_name = env
        self.env_metadata = metadata
        self.bake = self.target.bake_options()
        self.options = packer.BuilderOptions.of(self.target.region or "", metadata, self.bake)
        self._provider: Any = None

    @property
    def provider(self) -> Any:
        if self.providers is not None:
            return self.providers(self.env_name, self.env_metadata)
        if self._provider is None:
            self._provider = build_provider(self.env_name, self.env_metadata, self.settings)
        return self._provider

    def close(self) -> None:
        if self._provider is not None:
            self._provider.close()
            self._provider = None

    # Lookups ------------------------------------------------------------------------------
    def base_images(self) -> list[Image]:
        images: list[Image] = self.provider.find_images(tags={TAG_ROLE: "base"})
        return images

    def newest_base(self) -> Image:
        pinned = self.bake.get("baseImage")
        if isinstance(pinned, str) and pinned:
            # An operator's choice (e.g. while a new base is being tried) wins over "newest".
            image: Image = self.provider.describe_image(pinned)
            return image
        bases = self.base_images()
        if not bases:
            raise NotFound(
                f"no base image for target {self.target.name}: bake one first "
                f"(klink bake-base --target {self.target.name})",
                field="base_image",
            )
        return bases[0]

    # Templates ----------------------------------------------------------------------------
    def service_template(
        self,
        *,
        app: str,
        version: str,
        artifact: Path,
        sha256: str,
        bake_commands: Sequence[str],
        embargo: Sequence[str],
        at: datetime,
    ) -> dict[str, Any]:
        base = self.newest_base()
        tags = service_tags(app, version, sha256, base.id, at, embargo)
        return packer.service_template(
            app=app,
            version=version,
            options=self.options,
            source_ami=base.id,
            ami_name=image_name(app, version, at),
            artifact_path=str(artifact),
            bake_commands=bake_commands,
            tags=tags,
        )

    def base_template(self, at: datetime) -> dict[str, Any]:
        parent = self.bake.get("parentImage")
        if not isinstance(parent, str) or not parent:
            raise InvalidInput(
                f"environment {self.env_name} needs bake.parentImage (the AMI base images "
                "are baked from)",
                field="bake.parentImage",
            )
        steps = self.bake.get("baseSteps", list(DEFAULT_BASE_STEPS))
        if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
            raise InvalidInput("bake.baseSteps must be a list of strings", field="bake.baseSteps")
        steps = [s.replace("$KLINK_BAKED_AT", stamp(at)) for s in steps]
        tags = {TAG_ROLE: "base", TAG_BAKED_AT: stamp(at), TAG_MANAGED_BY: "klink"}
        return packer.base_template(
            options=self.options,
            parent_ami=parent,
            ami_name=f"klink-base-{at:%Y%m%d%H%M%S}",
            steps=steps,
            tags=tags,
        )

    # Bakes --------------------------------------------------------------------------------
    def run(self, template: Mapping[str, Any], *, work: Path, log: Callable[[str], None]) -> Image:
        env, secrets = self._credentials()
        ami_name = template["builders"][0]["ami_name"]
        try:
            result = packer.run(
                template, work=work, timeout=self.timeout, log=log, secrets=secrets, env=env
            )
        except packer.PackerFailed as exc:
            self._remove_leftovers(exc.seen_images, ami_name, log)
            raise
        assert result.image is not None
        tags = template["builders"][0]["tags"]
        self._share(result.image, tags, log)
        image: Image = self.provider.describe_image(result.image)
        return image

    def _credentials(self) -> tuple[dict[str, str] | None, list[str]]:
        """Packer acts with the environment's assumed role when it has one."""
        session = getattr(self.provider, "session", None)
        creds = session.role_credentials() if session is not None else None
        if creds is None:
            return None, []
        import os

        env = dict(os.environ)
        key, secret, token = _credential_parts(creds)
        env.update(
            {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token}
        )
        return env, [secret, token]

    def _remove_leftovers(self, seen: set[str], ami_name: str, log: Callable[[str], None]) -> None:
        leftovers = set(seen)
        try:
            leftovers |= {i.id for i in self.provider.find_images(name_prefix=ami_name)}
        except KlinkError as exc:
            log(f"cannot look for leftover images named {ami_name}: {exc.message}")
        for image_id in sorted(leftovers):
            log(f"deregistering {image_id}, left by the failed bake")
            try:
                self.provider.deregister_image(image_id)
            except KlinkError as exc:
                log(f"cannot deregister {image_id}: {exc.message}")

    def _share(self, image_id: str, tags: Mapping[str, str], log: Callable[[str], None]) -> None:
        accounts = self.target.account_ids
        if accounts:
            log(f"sharing {image_id} with {', '.join(accounts)}")
            self.provider.share_image(image_id, accounts)
        for env, metadata in self.target.envs.items():
            if env == self.env_name:
                continue
            if self.providers is not None:
                self.providers(env, metadata).tag_image(image_id, tags)
                continue
            other = build_provider(env, metadata, self.settings)
            try:
                other.tag_image(image_id, tags)
            finally:
                other.close()


def _credential_parts(creds: Any) -> tuple[str, str, str]:
    if isinstance(creds, Mapping):
        return (
            str(creds.get("AccessKeyId") or creds.get("access_key")),
            str(creds.get("SecretAccessKey") or creds.get("secret_key")),
            str(creds.get("SessionToken") or creds.get("token") or ""),
        )
    return (
        str(getattr(creds, "access_key", "")),
        str(getattr(creds, "secret_key", "")),
        str(getattr(creds, "token", "") or ""),
    )
