"""The images of each target: listing, deleting when unused, and cleanup.

``Inventory`` works on every target of the environments: on ``local`` through the image store
(files, no daemon), on ``aws:REGION`` through the target's provider. What is in use comes from
the providers (groups that exist) and the deploy service (recent deployments); see
``cleanup.py`` for the policy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from klink.bake import cleanup
from klink.bake.service import BakeService
from klink.bake.targets import Target, choose
from klink.errors import Conflict, KlinkError, NotFound
from klink.names import check_name
from klink.providers.base import Image
from klink.providers.local.images import ImageStore

log = logging.getLogger(__name__)


@dataclass
class Inventory:
    bakes: BakeService

    def images(self, app: str, target_name: str | None = None) -> list[dict[str, Any]]:
        check_name(app, "app")
        known = self.bakes.targets()
        chosen = [choose(target_name, known)] if target_name else list(known.values())
        result = []
        for target in chosen:
            for image in self._images_of(target, app):
                result.append(_image_json(image, target.name))
        return result

    def _images_of(self, target: Target, app: str) -> list[Image]:
        if target.provider == "local":
            return ImageStore(self.bakes.runtime.settings.home).list(app)
        baker = self.bakes.aws_baker(target)
        try:
            images: list[Image] = baker.provider.list_images(app)
        finally:
            baker.close()
        return images

    def in_use(self, target: Target, app: str) -> set[str]:
        """Images of ``app`` in use on ``target``; raise UseUnknown when that cannot be told."""
        used = cleanup.deployed_images(self.bakes.runtime.http("deploy"), app)
        for env, metadata in target.envs.items():
            try:
                provider = self.bakes.provider(env, metadata)
            except (KlinkError, ImportError) as exc:
                raise cleanup.UseUnknown(f"cannot open environment {env}: {exc}") from None
            try:
                used |= cleanup.group_images(provider, app)
            except cleanup.UseUnknown:
                self.bakes.forget(env)
                raise
        return used

    def delete_image(self, app: str, image_id: str, target_name: str | None = None) -> None:
        known = self.bakes.targets()
        chosen = [choose(target_name, known)] if target_name else list(known.values())
        for target in chosen:
            images = {i.id: i for i in self._images_of(target, app)}
            if image_id not in images:
                continue
            try:
                used = self.in_use(target, app)
            except cleanup.UseUnknown as exc:
                raise Conflict(
                    f"cannot tell whether {image_id} is in use ({exc.message}); not deleted"
                ) from None
            if image_id in used:
                raise Conflict(f"image {image_id} is in use by a group or a recent deployment")
            self._deregister(target, image_id)
            return
        raise NotFound(f"{app} has no image {image_id}", field="image")

    def _deregister(self, target: Target, image_id: str) -> None:
        if target.provider == "local":
            ImageStore(self.bakes.runtime.settings.home).delete(image_id)
            return
        baker = self.bakes.aws_baker(target)
        try:
            baker.provider.deregister_image(image_id)
        finally:
            baker.close()

    def clean(self, app: str) -> dict[str, Any]:
        """Deregister the app's images that are neither recent nor in use, on every target."""
        check_name(app, "app")
        keep = self.bakes.runtime.settings.images_keep
        report: dict[str, Any] = {"app": app, "targets": {}}
        for target in self.bakes.targets().values():
            images = self._images_of(target, app)
            try:
                used = self.in_use(target, app)
            except cleanup.UseUnknown as exc:
                log.warning("cleanup of %s on %s skipped: %s", app, target.name, exc.message)
                report["targets"][target.name] = {
                    "kept": [i.id for i in images],
                    "removed": [],
                    "skipped": exc.message,
                }
                continue
            decision = cleanup.decide(images, keep, used)
            for image_id in decision.remove:
                self._deregister(target, image_id)
            report["targets"][target.name] = {
                "kept": list(decision.keep),
                "removed": list(decision.remove),
            }
        return report

    def clean_bases(self, target: Target) -> list[str]:
        """Deregister base images that are neither among the newest nor the base of an image
        that still exists; return what was removed."""
        keep = max(1, self.bakes.runtime.settings.images_keep)
        if target.provider == "local":
            baker = self.bakes.local_baker()
            bases, images = baker.base_images(), baker.images.list()
        else:
            aws = self.bakes.aws_baker(target)
            try:
                bases, images = aws.base_images(), aws.provider.list_images()
            finally:
                aws.close()
        referenced = {i.base_image for i in images if i.base_image}
        decision = cleanup.decide(bases, keep, referenced)
        for image_id in decision.remove:
            self._deregister(target, image_id)
        return list(decision.remove)

    def clean_all(self) -> None:
        """The scheduled cleanup: every app's images, then unused base images."""
        for record in self.bakes.metadata().applications():
            try:
                self.clean(str(record["name"]))
            except KlinkError as exc:
                log.warning("cleanup of %s failed: %s", record["name"], exc.message)
        for target in self.bakes.targets().values():
            try:
                removed = self.clean_bases(target)
            except KlinkError as exc:
                log.warning("cleanup of base images on %s failed: %s", target.name, exc.message)
                continue
            if removed:
                log.info("removed base images %s on %s", ", ".join(removed), target.name)


def _image_json(image: Image, target: str) -> dict[str, Any]:
    return {
        "id": image.id,
        "name": image.name,
        "state": image.state,
        "created_at": image.created_at.isoformat() if image.created_at else None,
        "version": image.version,
        "base_image": image.base_image,
        "embargo": list(image.embargo),
        "target": target,
        "tags": dict(image.tags),
    }
