"""Launch templates: the image, instance type, network, profile, disks and user-data of a group.

Klink never edits a template: one template per group, named ``{group}-{yyyyMMddHHmmss}``, with a
single version. The user-data is stored base64 (as EC2 requires) and decoded back on describe,
so the previous deployment's configuration can be read from the cloud alone.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Mapping
from typing import Any

from klink.errors import Conflict, NotFound
from klink.providers.aws.convert import parse_time, tag_list, tags_of
from klink.providers.aws.session import AwsSession
from klink.providers.base import BlockDevice, LaunchTemplate, LaunchTemplateSpec


def encode_user_data(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode_user_data(raw: str | None) -> str:
    if not raw:
        return ""
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return raw  # not ours: a template written by hand with plain user-data


def template_data(spec: LaunchTemplateSpec) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ImageId": spec.image_id,
        "InstanceType": spec.instance_type,
        "UserData": encode_user_data(spec.user_data),
    }
    if spec.security_group_ids:
        data["SecurityGroupIds"] = list(spec.security_group_ids)
    if spec.instance_profile:
        key = "Arn" if spec.instance_profile.startswith("arn:") else "Name"
        data["IamInstanceProfile"] = {key: spec.instance_profile}
    if spec.key_name:
        data["KeyName"] = spec.key_name
    if spec.block_devices:
        data["BlockDeviceMappings"] = [
            {
                "DeviceName": bd.device_name,
                "Ebs": {
                    "VolumeSize": bd.size_gb,
                    "VolumeType": bd.volume_type,
                    "DeleteOnTermination": bd.delete_on_termination,
                },
            }
            for bd in spec.block_devices
        ]
    if spec.tags:
        # Volumes carry the deployment's tags too; instances get theirs from the group.
        data["TagSpecifications"] = [{"ResourceType": "volume", "Tags": tag_list(spec.tags)}]
    return data


def template_of(summary: Mapping[str, Any], data: Mapping[str, Any]) -> LaunchTemplate:
    profile = data.get("IamInstanceProfile") or {}
    return LaunchTemplate(
        id=summary["LaunchTemplateId"],
        name=summary["LaunchTemplateName"],
        image_id=data.get("ImageId", ""),
        instance_type=data.get("InstanceType", ""),
        user_data=decode_user_data(data.get("UserData")),
        security_group_ids=tuple(data.get("SecurityGroupIds", ())),
        instance_profile=profile.get("Name") or profile.get("Arn"),
        key_name=data.get("KeyName"),
        block_devices=tuple(
            BlockDevice(
                device_name=bd["DeviceName"],
                size_gb=int(bd.get("Ebs", {}).get("VolumeSize", 0)),
                volume_type=bd.get("Ebs", {}).get("VolumeType", "gp3"),
                delete_on_termination=bool(bd.get("Ebs", {}).get("DeleteOnTermination", True)),
            )
            for bd in data.get("BlockDeviceMappings", ())
        ),
        tags=tags_of(summary.get("Tags")),
        created_at=parse_time(summary.get("CreateTime")),
    )


class Templates:
    def __init__(self, session: AwsSession) -> None:
        self.session = session

    def create(self, spec: LaunchTemplateSpec) -> LaunchTemplate:
        ec2 = self.session.client("ec2")
        kwargs: dict[str, Any] = {
            "LaunchTemplateName": spec.name,
            "LaunchTemplateData": template_data(spec),
        }
        if spec.tags:
            kwargs["TagSpecifications"] = [
                {"ResourceType": "launch-template", "Tags": tag_list(spec.tags)}
            ]
        # Idempotent on the name: an existing template is returned as it is.
        with contextlib.suppress(Conflict):
            self.session.call(
                f"create launch template {spec.name}",
                lambda: ec2.create_launch_template(**kwargs),
            )
        return self.describe(spec.name)

    def describe(self, name: str) -> LaunchTemplate:
        ec2 = self.session.client("ec2")

        def run() -> LaunchTemplate | None:
            found = ec2.describe_launch_templates(
                Filters=[{"Name": "launch-template-name", "Values": [name]}]
            )["LaunchTemplates"]
            if not found:
                return None
            summary = found[0]
            versions = ec2.describe_launch_template_versions(
                LaunchTemplateId=summary["LaunchTemplateId"], Versions=["$Default"]
            )["LaunchTemplateVersions"]
            data = versions[0].get("LaunchTemplateData", {}) if versions else {}
            return template_of(summary, data)

        try:
            template = self.session.call(f"describe launch template {name}", run)
        except NotFound:
            template = None
        if template is None:
            raise NotFound(f"launch template {name} not found", field="launch_template")
        return template

    def delete(self, name: str) -> None:
        try:
            template_id = self.describe(name).id
        except NotFound:
            return
        ec2 = self.session.client("ec2")
        with contextlib.suppress(NotFound):
            self.session.call(
                f"delete launch template {name}",
                lambda: ec2.delete_launch_template(LaunchTemplateId=template_id),
            )
