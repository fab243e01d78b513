"""Images on an ``aws:REGION`` target, against moto: list, delete (refused while a group uses
the image), cleanup. The AMIs and the group are set up with plain boto3, as Klink's bakes and
deployments would have left them; Klink reaches them through its AWS provider."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from tests.bake.conftest import put_env
from tests.build.conftest import StartServer

pytestmark = pytest.mark.slow

SOURCE_AMI = "ami-1e749f67"


def _ami(ec2: Any, instance: str, version: str) -> str:
    image = ec2.create_image(InstanceId=instance, Name=f"hello-{version}-20261129000000")
    ec2.create_tags(
        Resources=[image["ImageId"]],
        Tags=[{"Key": "klink:app", "Value": "hello"}, {"Key": "klink:version", "Value": version}],
    )
    return str(image["ImageId"])


def test_aws_images_cleanup_keeps_what_a_group_uses(start_server: StartServer, moto: str) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto)
    autoscaling = boto3.client("autoscaling", region_name="us-east-1", endpoint_url=moto)
    instance = ec2.run_instances(ImageId=SOURCE_AMI, MinCount=1, MaxCount=1)["Instances"][0]
    amis = []
    for version in ("1.0.1", "1.0.2", "1.0.3"):
        amis.append(_ami(ec2, instance["InstanceId"], version))
        time.sleep(1.05)  # AMI creation dates have one-second resolution: keep them ordered
    oldest, middle, newest = amis
    ec2.create_launch_template(
        LaunchTemplateName="hello-cloud-v000-20261129000000",
        LaunchTemplateData={"ImageId": oldest, "InstanceType": "t3.micro"},
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="hello-cloud-v000",
        LaunchTemplate={"LaunchTemplateName": "hello-cloud-v000-20261129000000"},
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=0,
        AvailabilityZones=["us-east-1a"],
    )

    server = start_server(KLINK_IMAGES_KEEP="1")
    with server.client() as http:
        put_env(http, "cloud", provider="aws", region="us-east-1", endpoint_url=moto)
        listed = http.get("/bake/images/hello", params={"target": "aws:us-east-1"}).json()
        assert [i["id"] for i in listed["images"]] == [newest, middle, oldest]
        assert {i["target"] for i in listed["images"]} == {"aws:us-east-1"}

        refused = http.delete(f"/bake/images/hello/{oldest}")
        assert refused.status_code == 409
        assert "in use" in refused.json()["error"]["message"]

        report = http.post("/bake/clean/hello").json()["targets"]["aws:us-east-1"]
        assert report["removed"] == [middle]
        assert sorted(report["kept"]) == sorted([newest, oldest])
        states = {i["ImageId"]: i["State"] for i in ec2.describe_images(Owners=["self"])["Images"]}
        assert middle not in states or states[middle] == "deregistered"
        assert states[oldest] == "available"

        assert http.delete(f"/bake/images/hello/{newest}").status_code == 204
        assert http.delete(f"/bake/images/hello/{newest}").status_code == 404
        after = http.get("/bake/images/hello").json()["images"]
        assert [i["id"] for i in after] == [oldest]
