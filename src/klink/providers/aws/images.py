"""Machine images (AMIs): describe, list Klink's own, tag, share, deregister.

Klink's images are the account's own AMIs tagged ``klink:app``; every list paginates. An
image's app, version, base image, bake date and embargo are its tags (``providers/base.py``).
Deregistering also deletes the image's EBS snapshots, which AWS would otherwise keep (and
bill) forever.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from klink.errors import NotFound
from klink.providers.aws.convert import newest_first, parse_time, tag_list, tags_of
from klink.providers.aws.session import AwsSession
from klink.providers.base import TAG_APP, Image


def image_of(raw: Mapping[str, Any]) -> Image:
    return Image(
        id=raw["ImageId"],
        name=raw.get("Name", ""),
        state=raw.get("State", "available"),
        created_at=parse_time(raw.get("CreationDate")),
        tags=tags_of(raw.get("Tags")),
    )


class Images:
    def __init__(self, session: AwsSession) -> None:
        self.session = session

    def _describe(self, image_id: str) -> dict[str, Any] | None:
        ec2 = self.session.client("ec2")

        def run() -> dict[str, Any] | None:
            found = ec2.describe_images(ImageIds=[image_id])["Images"]
            return found[0] if found else None

        try:
            return self.session.call(f"describe image {image_id}", run)
        except NotFound:
            return None

    def describe(self, image_id: str) -> Image:
        raw = self._describe(image_id)
        if raw is None:
            raise NotFound(f"image {image_id} not found", field="image_id")
        return image_of(raw)

    def _search(self, filters: list[dict[str, Any]], what: str) -> list[Image]:
        ec2 = self.session.client("ec2")

        def run() -> list[Image]:
            pages = ec2.get_paginator("describe_images").paginate(
                Owners=["self"], Filters=filters, PaginationConfig={"PageSize": 1000}
            )
            return [image_of(raw) for page in pages for raw in page["Images"]]

        images = self.session.call(what, run)
        return sorted(images, key=lambda i: (newest_first(i.created_at), i.id))

    def by_app(self, app: str | None = None) -> list[Image]:
        if app is None:
            filters = [{"Name": "tag-key", "Values": [TAG_APP]}]
        else:
            filters = [{"Name": f"tag:{TAG_APP}", "Values": [app]}]
        return self._search(filters, "list images")

    def find(
        self, name_prefix: str | None = None, tags: Mapping[str, str] | None = None
    ) -> list[Image]:
        filters: list[dict[str, Any]] = []
        if name_prefix:
            filters.append({"Name": "name", "Values": [f"{name_prefix}*"]})
        for key, value in sorted((tags or {}).items()):
            filters.append({"Name": f"tag:{key}", "Values": [value]})
        return self._search(filters, "find images")

    def tag(self, image_id: str, tags: Mapping[str, str]) -> None:
        ec2 = self.session.client("ec2")
        self.session.call(
            f"tag image {image_id}",
            lambda: ec2.create_tags(Resources=[image_id], Tags=tag_list(tags)),
        )

    def share(self, image_id: str, account_ids: Sequence[str]) -> None:
        """Let ``account_ids`` launch the image (launch permissions); idempotent."""
        if not account_ids:
            return
        ec2 = self.session.client("ec2")
        self.session.call(
            f"share image {image_id}",
            lambda: ec2.modify_image_attribute(
                ImageId=image_id,
                LaunchPermission={"Add": [{"UserId": a} for a in account_ids]},
            ),
        )

    def launch_permissions(self, image_id: str) -> list[str]:
        ec2 = self.session.client("ec2")
        answer = self.session.call(
            f"describe image {image_id} launch permissions",
            lambda: ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission"),
        )
        return sorted(p["UserId"] for p in answer.get("LaunchPermissions", []) if "UserId" in p)

    def deregister(self, image_id: str) -> None:
        raw = self._describe(image_id)
        if raw is None or raw.get("State") == "deregistered":
            return
        ec2 = self.session.client("ec2")
        snapshots = [
            bd["Ebs"]["SnapshotId"]
            for bd in raw.get("BlockDeviceMappings", [])
            if bd.get("Ebs", {}).get("SnapshotId")
        ]
        try:
            self.session.call(
                f"deregister image {image_id}", lambda: ec2.deregister_image(ImageId=image_id)
            )
        except NotFound:
            return
        for snapshot in snapshots:
            with contextlib.suppress(NotFound):
                self.session.call(
                    f"delete snapshot {snapshot} of {image_id}",
                    lambda s=snapshot: ec2.delete_snapshot(SnapshotId=s),  # type: ignore[misc]
                )
