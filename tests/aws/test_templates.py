"""Launch templates: everything a group launches with, user-data base64 in EC2, plain here."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from klink.errors import NotFound
from klink.providers.aws import AwsProvider
from klink.providers.base import TAG_CONFIG_COMMIT, BlockDevice, LaunchTemplateSpec

pytestmark = pytest.mark.slow

USER_DATA = """#cloud-config
write_files:
  - path: /etc/search/application.json
    content: '{"greeting": "grüß dich", "threads": 8}'
runcmd:
  - [systemctl, restart, search]
"""


def spec(image: str, security_group: str, name: str = "search-prod-v001-20260102030405") -> Any:
    return LaunchTemplateSpec(
        name=name,
        image_id=image,
        instance_type="m5.large",
        user_data=USER_DATA,
        security_group_ids=(security_group,),
        instance_profile="search-instance",
        key_name="ops",
        block_devices=(BlockDevice("/dev/xvda", 30, "gp3", True),),
        tags={TAG_CONFIG_COMMIT: "0123abc", "klink:app": "search"},
    )


@pytest.fixture
def security_group(ec2: Any, subnet: dict[str, str]) -> str:
    created = ec2.create_security_group(
        GroupName="search", Description="search", VpcId=subnet["vpc"]
    )
    return str(created["GroupId"])


def test_create_and_describe_round_trip_every_field(
    provider: AwsProvider, image: str, security_group: str, ec2: Any
) -> None:
    created = provider.create_launch_template(spec(image, security_group))
    described = provider.describe_launch_template("search-prod-v001-20260102030405")
    assert created == described
    assert described.id.startswith("lt-")
    assert described.image_id == image
    assert described.instance_type == "m5.large"
    assert described.user_data == USER_DATA  # decoded back, non-ASCII intact
    assert described.security_group_ids == (security_group,)
    assert described.instance_profile == "search-instance"
    assert described.key_name == "ops"
    assert described.block_devices == (BlockDevice("/dev/xvda", 30, "gp3", True),)
    assert described.tags == {TAG_CONFIG_COMMIT: "0123abc", "klink:app": "search"}
    assert described.created_at is not None
    # In EC2 itself the user-data is base64, as instances receive it.
    raw = ec2.describe_launch_template_versions(LaunchTemplateId=described.id)
    stored = raw["LaunchTemplateVersions"][0]["LaunchTemplateData"]["UserData"]
    assert base64.b64decode(stored).decode() == USER_DATA


def test_create_is_idempotent_on_the_name(
    provider: AwsProvider, image: str, security_group: str, ec2: Any
) -> None:
    first = provider.create_launch_template(spec(image, security_group))
    other_image = ec2.register_image(Name="other-image")["ImageId"]
    again = provider.create_launch_template(spec(other_image, security_group))
    assert again == first  # returned as it is, not changed
    assert again.image_id == image
    versions = ec2.describe_launch_template_versions(LaunchTemplateId=first.id)
    assert len(versions["LaunchTemplateVersions"]) == 1


def test_describe_finds_the_exact_name_only(
    provider: AwsProvider, image: str, security_group: str
) -> None:
    provider.create_launch_template(spec(image, security_group, "search-prod-v001-20260102030405"))
    with pytest.raises(NotFound) as caught:
        provider.describe_launch_template("search-prod-v001-2026010203040")
    assert caught.value.field == "launch_template"


def test_delete_is_idempotent(provider: AwsProvider, image: str, security_group: str) -> None:
    provider.create_launch_template(spec(image, security_group))
    provider.delete_launch_template("search-prod-v001-20260102030405")
    with pytest.raises(NotFound):
        provider.describe_launch_template("search-prod-v001-20260102030405")
    provider.delete_launch_template("search-prod-v001-20260102030405")
