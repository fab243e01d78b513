"""The whole path on the aws provider, against moto's server on loopback, through ``klink serve``.

Exercised for real: ``klink serve`` (all services and the engine) as a child process with
moto's URL as the environment's ``endpoint_url``; a base bake through ``POST /bake/base`` (real
Packer 1.6.6, ``communicator: none``: source instance, AMI, tags, cleanup); a real build of
``examples/hello`` (two versions) through ``/build``; the service bake through ``/bake``, which
fails at Packer's artifact upload (Packer 1.6.6 cannot upload with ``communicator: none``; the
test checks that failure and that it leaves no AMI); the service images then baked by real
Packer from Klink's own service template *without its provisioners* (``AwsBaker``: builder,
tags, artifact checksum tag; the artifact is not installed in the AMI); a target group made by
``/infra`` apply; red-black deploys of v1 then v2 by the server's engine, health from ELBv2's
API; a rollback to v1. Not exercised: the artifact upload and bake commands inside an AMI, and
anything that would connect to an instance (moto's addresses are never dialled: every Python
process of the platform records non-loopback connects and the fixture asserts there are none;
Packer talks only to ``custom_endpoint_ec2``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from klink.bake import packer
from klink.bake.aws import AwsBaker
from klink.bake.targets import targets_of
from klink.providers.aws.provider import AwsProvider
from klink.providers.base import TAG_APP, TAG_ROLE, TAG_VERSION
from tests.bake.conftest import hello_app
from tests.build.conftest import commit_files
from tests.e2e.platform import Platform, in_traffic, push_config
from tests.fixtures_moto import FAKE_CREDENTIALS

SOURCE_AMI = "ami-1e749f67"  # an EBS-backed Ubuntu AMI that moto ships
ACCOUNT = "123456789012"
REGION = "us-east-1"


@pytest.fixture
def aws_platform(tmp_path: Path, moto: str) -> Iterator[Platform]:
    running = Platform(tmp_path, {**FAKE_CREDENTIALS, "KLINK_BAKE_TIMEOUT": "90"})
    try:
        running.start()
        yield running
    finally:
        running.close()
    assert running.non_loopback_connects() == []


def _env(moto: str) -> dict[str, Any]:
    return {
        "provider": "aws",
        "region": REGION,
        "endpoint_url": moto,
        "account_id": ACCOUNT,
        "aws_retries": {"max_attempts": 2, "backoff_attempts": 2},
        "bake": {
            "communicator": "none",
            "parentImage": SOURCE_AMI,
            "baseImage": SOURCE_AMI,
            "baseSteps": [],
            "startRetryTimeout": "1s",
        },
    }


def _bake_without_provisioners(
    moto: str, tmp: Path, version: str, sha256: str, at: datetime
) -> str:
    target = targets_of([{"name": "prod", "metadata": _env(moto)}])[f"aws:{REGION}"]
    baker = AwsBaker(
        target=target, settings=SimpleNamespace(home=tmp), clock=lambda: at, timeout=90
    )
    artifact = tmp / f"hello-{version}.tar.gz"
    artifact.write_bytes(b"not uploaded")
    try:
        template = baker.service_template(
            app="hello",
            version=version,
            artifact=artifact,
            sha256=sha256,
            bake_commands=[],
            embargo=[],
            at=at,
        )
        template.pop("provisioners")
        image = baker.run(template, work=tmp / f"bake-{version}", log=lambda _line: None)
    finally:
        baker.close()
    return image.id


def _exists(ec2: Any, image_id: str) -> bool:
    found = ec2.describe_images(Filters=[{"Name": "image-id", "Values": [image_id]}])["Images"]
    return bool(found)


def test_a_failed_bake_forgets_its_source_ami() -> None:
    """Packer names the source AMI ("Found Image ID") before failing: only "AMI: …" lines name
    an AMI the build made, which a failed bake deregisters."""
    run = packer.PackerRun()
    run.feed("1,,ui,say,    amazon-ebs: Found Image ID: ami-1e749f67")
    run.feed("1,,ui,message,    amazon-ebs: AMI: ami-4fa996644b6ee1642")
    assert run.seen_images == {"ami-4fa996644b6ee1642"}


@pytest.mark.slow
def test_bake_deploy_rollback_on_aws_against_moto(
    aws_platform: Platform, moto: str, tmp_path: Path
) -> None:
    platform = aws_platform
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto)
    platform.call("PUT", "/metadata/environments/prod", json={"metadata": _env(moto)})

    base = platform.stream("/bake/base", {"target": f"aws:{REGION}"})
    assert "result" in base, base
    base_tags = {
        t["Key"]: t["Value"]
        for t in ec2.describe_images(ImageIds=[base["result"]["image"]])["Images"][0]["Tags"]
    }
    assert base_tags[TAG_ROLE] == "base"

    with platform.client() as http:
        source = hello_app(http, tmp_path)
    built = [platform.stream("/build/builds/hello", {})["result"]]
    commit_files(source, {"VERSION": "changed\n"}, "a second version")
    built.append(platform.stream("/build/builds/hello", {})["result"])
    versions = [b["version"] for b in built]
    assert versions[0] != versions[1]

    own_before = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    failed = platform.stream(f"/bake/images/hello/{versions[0]}", {"target": f"aws:{REGION}"})
    assert failed["error"]["code"] == "command_failed", failed
    assert "Upload is not implemented when communicator = 'none'" in failed["error"]["output"]
    assert {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]} == own_before
    # The failed bake removed what it made, not its source (the base) AMI.
    assert _exists(ec2, SOURCE_AMI)

    images = [
        _bake_without_provisioners(
            moto, tmp_path, b["version"], b["sha256"], datetime(2026, 11, 29, 10, n, tzinfo=UTC)
        )
        for n, b in enumerate(built)
    ]
    listed = platform.call("GET", "/bake/images/hello", params={"target": f"aws:{REGION}"})
    assert set(images) <= {
        i["id"] for i in (listed["images"] if isinstance(listed, dict) else listed)
    }

    platform.call("POST", "/config/repos/hello/prod")
    push_config(
        platform,
        "hello",
        "prod",
        {
            "deployment-params.json": {
                "instanceType": "t3.micro",
                "subnetPurpose": None,
                "desiredCapacity": 2,
                "max": 2,
                "healthCheckIntervalSeconds": 1,
                "targetGroups": ["hello"],
                "keepWarmSeconds": 1,
            },
            "application-properties.json": {"service.port": 8080},
            "infrastructure.yaml": (
                "targetGroups:\n  hello: {port: 8080, healthCheck: {path: /healthcheck}}\n"
            ),
        },
    )
    applied = platform.call("POST", "/infra/hello/prod/apply", json={})
    assert applied["status"] == "succeeded", applied
    _listener_to(moto, "hello")  # traffic moves by listener weights: the target group needs one

    provider = AwsProvider.from_environment("prod", _env(moto), SimpleNamespace(home=tmp_path))
    ids = [platform.wait(platform.deploy("hello", "prod", image), timeout=60) for image in images]
    for record in ids:
        assert record["status"] == "completed", record["error"]
    rollback = platform.call("POST", "/deploy/hello/prod/rollback", json={"message": "back"})
    rolled = platform.wait(str(rollback["id"]), timeout=60)
    assert rolled["status"] == "completed", rolled["error"]

    groups = provider.list_groups(r"hello-prod-v\d{3}")
    assert [g.name for g in groups] == ["hello-prod-v002"]
    group = groups[0]
    template = provider.describe_launch_template(str(group.launch_template))
    assert template.image_id == images[0]  # the rollback is v1's image again
    image_tags = provider.describe_image(images[0]).tags
    assert (image_tags[TAG_APP], image_tags[TAG_VERSION]) == ("hello", versions[0])
    assert len(group.instances) == 2
    assert in_traffic(provider, "hello") == {"hello-prod-v002": (100, 2, 2)}
    member = provider.traffic("hello").get("hello-prod-v002")
    registered = {t.instance_id for t in provider.target_health(member.target)}
    assert registered == {i.id for i in group.instances}


def _listener_to(moto: str, target_group: str) -> None:
    """A load balancer whose listener forwards to ``target_group`` (made with boto3 on moto)."""
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto)
    elb = boto3.client("elbv2", region_name=REGION, endpoint_url=moto)
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    balancer = elb.create_load_balancer(Name="hello-e2e", Subnets=subnets)["LoadBalancers"][0]
    arn = elb.describe_target_groups(Names=[target_group])["TargetGroups"][0]["TargetGroupArn"]
    elb.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}],
    )
