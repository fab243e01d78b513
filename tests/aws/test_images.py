"""Images: describe with Klink's tags, list by app, find, tag, share, deregister."""

from __future__ import annotations

from typing import Any

import pytest

from klink.errors import NotFound
from klink.providers.aws import AwsProvider
from klink.providers.base import (
    TAG_APP,
    TAG_BAKED_AT,
    TAG_BASE_IMAGE,
    TAG_EMBARGO,
    TAG_ROLE,
    TAG_VERSION,
)
from tests.aws.conftest import register_image

pytestmark = pytest.mark.slow


def test_describe_reads_app_version_base_bake_date_and_embargo(
    provider: AwsProvider, ec2: Any
) -> None:
    image_id = register_image(
        ec2,
        "search-3.14-20260102030405",
        {
            TAG_APP: "search",
            TAG_VERSION: "3.14",
            TAG_BASE_IMAGE: "ami-0123456789abcdef0",
            TAG_BAKED_AT: "2026-01-02T03:04:05Z",
            TAG_EMBARGO: "prod, stage",
        },
    )
    image = provider.describe_image(image_id)
    assert image.id == image_id
    assert image.name == "search-3.14-20260102030405"
    assert image.state == "available"
    assert image.created_at is not None
    assert image.created_at.tzinfo is not None
    assert (image.app, image.version) == ("search", "3.14")
    assert image.base_image == "ami-0123456789abcdef0"
    assert image.baked_at == "2026-01-02T03:04:05Z"
    assert image.embargo == ("prod", "stage")


def test_describe_missing_image_is_not_found(provider: AwsProvider) -> None:
    with pytest.raises(NotFound) as caught:
        provider.describe_image("ami-0000000000000dead")
    assert caught.value.field == "image_id"


def test_list_images_returns_klink_images_only_and_filters_by_app(
    provider: AwsProvider, ec2: Any
) -> None:
    search = register_image(ec2, "search-1", {TAG_APP: "search", TAG_VERSION: "1.0"})
    search2 = register_image(ec2, "search-2", {TAG_APP: "search", TAG_VERSION: "1.1"})
    other = register_image(ec2, "searcher-1", {TAG_APP: "searcher", TAG_VERSION: "1.0"})
    register_image(ec2, "hand-made")  # not Klink's: no klink:app tag
    assert {i.id for i in provider.list_images()} == {search, search2, other}
    assert {i.id for i in provider.list_images("search")} == {search, search2}
    assert provider.list_images("nothing") == []
    # moto's public AMIs (owned by "amazon") are never listed as ours
    assert len(ec2.describe_images(Owners=["amazon"])["Images"]) > 0


def test_find_images_by_name_prefix_and_tags(provider: AwsProvider, ec2: Any) -> None:
    base_old = register_image(ec2, "klink-base-20260101", {TAG_ROLE: "base"})
    base_new = register_image(ec2, "klink-base-20260201", {TAG_ROLE: "base"})
    register_image(ec2, "klink-other-20260201", {TAG_ROLE: "base"})
    register_image(ec2, "klink-base-unfinished")
    assert {i.id for i in provider.find_images(name_prefix="klink-base-")} >= {
        base_old,
        base_new,
    }
    found = provider.find_images(name_prefix="klink-base-", tags={TAG_ROLE: "base"})
    assert {i.id for i in found} == {base_old, base_new}
    assert provider.find_images(tags={TAG_ROLE: "nope"}) == []


def test_tag_image_adds_and_overwrites_tags(provider: AwsProvider, image: str) -> None:
    provider.tag_image(image, {TAG_EMBARGO: "prod", TAG_VERSION: "3.15"})
    described = provider.describe_image(image)
    assert described.embargo == ("prod",)
    assert described.version == "3.15"
    assert described.app == "search"


def test_share_image_grants_launch_permission(provider: AwsProvider, image: str) -> None:
    assert provider.image_launch_permissions(image) == []
    provider.share_image(image, ["111122223333", "444455556666"])
    provider.share_image(image, ["111122223333"])  # idempotent
    assert provider.image_launch_permissions(image) == ["111122223333", "444455556666"]
    provider.share_image(image, [])  # nothing to do
    with pytest.raises(NotFound):
        provider.share_image("ami-0000000000000dead", ["111122223333"])


def test_deregister_is_idempotent_and_deletes_the_images_snapshots(
    provider: AwsProvider, ec2: Any, image: str
) -> None:
    # moto's register_image makes no EBS snapshot (a fidelity gap); create_image from an
    # instance does, like a real bake.
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    baked = ec2.create_image(InstanceId=instance["InstanceId"], Name="search-ebs")["ImageId"]
    mappings = ec2.describe_images(ImageIds=[baked])["Images"][0]["BlockDeviceMappings"]
    snapshots = [m["Ebs"]["SnapshotId"] for m in mappings if "Ebs" in m]
    assert snapshots
    provider.deregister_image(baked)
    with pytest.raises(NotFound):
        provider.describe_image(baked)
    remaining = ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": snapshots}])
    assert remaining["Snapshots"] == []
    provider.deregister_image(baked)  # again: not an error
    provider.deregister_image("ami-0000000000000dead")
