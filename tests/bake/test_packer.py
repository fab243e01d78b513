"""Packer: template, argv, masking and output parsing as pure code; then real Packer 1.6.6
against moto's server on loopback.

Packer's ``amazon-ebs`` builder with ``communicator: none`` runs completely against moto
(source AMI lookup, key pair, security group, instance, stop, create AMI, tags, cleanup) when
the template has no provisioners. With the ``file``/``shell`` provisioners that install the
artifact, it cannot: Packer answers "Upload is not implemented when communicator = 'none'" and
retries until the provisioner's ``start_retry_timeout``. An SSH communicator would connect to
the fake, non-loopback address moto gives the instance, which tests never do. So the tests
show: the full builder path and artifact-line parsing with a template whose provisioners are
removed; the real service template failing at the upload step (the ``file`` provisioner fails
at once), reported with Packer's last
lines and leaving nothing behind; the time limit stopping Packer, which cleans up after itself.

A second limit: every AMI moto creates has root device type "standard", and Packer refuses such
a source ("Expected 'ebs', got 'standard'"), so an AMI Klink baked on moto cannot be the source
of another bake. Service bakes here therefore pin their base (``bake.baseImage``) to an EBS AMI
that moto ships; the base bake itself runs from one too.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from klink.bake import packer
from klink.bake.aws import AwsBaker
from klink.bake.targets import targets_of
from klink.providers.base import TAG_APP, TAG_ROLE, TAG_VERSION
from tests.bake.conftest import hello_app, put_env, stream
from tests.build.conftest import StartServer

SOURCE_AMI = "ami-1e749f67"  # an Ubuntu AMI that moto ships
ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"


def _options(**extra: Any) -> packer.BuilderOptions:
    return packer.BuilderOptions(region="us-east-1", **extra)


def test_service_template_is_data() -> None:
    template = packer.service_template(
        app="search",
        version="3.14.1",
        options=_options(endpoint_url="http://127.0.0.1:5000", communicator="none"),
        source_ami="ami-0123456789abcdef0",
        ami_name="search-3.14.1-20260101000000",
        artifact_path="/work/search-3.14.1.tar.gz",
        bake_commands=["echo {{version}} > /etc/search-version"],
        tags={TAG_APP: "search", TAG_VERSION: "3.14.1"},
    )
    (builder,) = template["builders"]
    assert builder["type"] == "amazon-ebs"
    assert builder["source_ami"] == "ami-0123456789abcdef0"
    assert builder["custom_endpoint_ec2"] == "http://127.0.0.1:5000"
    assert builder["skip_region_validation"] is True
    assert builder["skip_credential_validation"] is True
    assert builder["skip_metadata_api_check"] is True
    assert builder["communicator"] == "none"
    assert "ssh_username" not in builder
    assert builder["tags"] == {TAG_APP: "search", TAG_VERSION: "3.14.1"}
    upload, install, bake = template["provisioners"]
    assert upload == {
        "type": "file",
        "source": "/work/search-3.14.1.tar.gz",
        "destination": "/tmp/search-3.14.1.tar.gz",
    }
    assert "sudo tar -xzf /tmp/search-3.14.1.tar.gz -C /opt/search" in install["inline"]
    assert bake["inline"] == ["echo 3.14.1 > /etc/search-version"]
    assert "KLINK_VERSION=3.14.1" in bake["environment_vars"]
    ssh = packer.service_template(
        app="search",
        version="1",
        options=_options(),
        source_ami="ami-1",
        ami_name="n",
        artifact_path="a",
        bake_commands=[],
        tags={},
    )
    assert ssh["builders"][0]["ssh_username"] == "ubuntu"
    assert "custom_endpoint_ec2" not in ssh["builders"][0]
    assert len(ssh["provisioners"]) == 2


def test_argv_and_secrets_are_masked() -> None:
    path = Path("/w/template.json")
    assert packer.argv("validate", path) == ["packer", "validate", "/w/template.json"]
    args = packer.argv("build", path, {"token": packer.Secret("s3cr3t"), "region": "eu-west-1"})
    assert args[:3] == ["packer", "build", "-machine-readable"]
    assert args[-1] == "/w/template.json"
    assert "region=eu-west-1" in args
    shown = packer.display(args)
    assert "s3cr3t" not in shown
    assert "token=<sensitive>" in shown
    assert packer.mask("key is s3cr3t!", ["s3cr3t"]) == "key is <sensitive>!"
    with pytest.raises(ValueError, match="unknown packer action"):
        packer.argv("inspect", path)


@pytest.mark.parametrize(
    ("line", "image", "text"),
    [
        ("1795948424,,ui,say,==> amazon-ebs: Creating AMI", None, "==> amazon-ebs: Creating AMI"),
        (
            "1795948424,,ui,message,    amazon-ebs: AMI: ami-4fa996644b6ee1642",
            None,
            "    amazon-ebs: AMI: ami-4fa996644b6ee1642",
        ),
        (
            "1795948424,amazon-ebs,artifact,0,id,us-east-1:ami-4fa996644b6ee1642",
            "ami-4fa996644b6ee1642",
            None,
        ),
        ("1795948424,amazon-ebs,artifact-count,1", None, None),
        (
            "1795948424,,ui,say,No volumes to clean up%!(PACKER_COMMA) skipping",
            None,
            "No volumes to clean up, skipping",
        ),
        ("not machine readable", None, "not machine readable"),
    ],
)
def test_machine_readable_lines(line: str, image: str | None, text: str | None) -> None:
    run = packer.PackerRun()
    assert run.feed(line) == text
    assert run.image == image


def test_packer_run_remembers_amis_it_saw() -> None:
    run = packer.PackerRun()
    run.feed("1,,ui,message,    amazon-ebs: AMI: ami-4fa996644b6ee1642")
    assert run.seen_images == {"ami-4fa996644b6ee1642"}
    assert run.image is None


# Real Packer against moto ------------------------------------------------------------------


@pytest.fixture
def packer_binary() -> str:
    found = shutil.which("packer")
    if found is None:
        pytest.fail("packer is not installed (scripts/test installs it)")
    return found


@pytest.fixture
def ec2(moto: str) -> Any:
    return boto3.client("ec2", region_name="us-east-1", endpoint_url=moto)


def _aws_env(moto: str, **bake: Any) -> dict[str, Any]:
    return {
        "provider": "aws",
        "region": "us-east-1",
        "endpoint_url": moto,
        "account_id": ACCOUNT,
        "bake": {"communicator": "none", "parentImage": SOURCE_AMI, "baseSteps": [], **bake},
    }


def _leftovers(ec2: Any) -> dict[str, list[str]]:
    instances = [
        i["InstanceId"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] not in ("terminated", "shutting-down")
    ]
    pairs = [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]]
    groups = [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]]
    return {
        "instances": instances,
        "key_pairs": [p for p in pairs if p.startswith("packer")],
        "security_groups": [g for g in groups if g.startswith("packer")],
    }


NOTHING_LEFT: dict[str, list[str]] = {"instances": [], "key_pairs": [], "security_groups": []}


@pytest.fixture
def aws_server(
    start_server: StartServer, moto: str, tmp_path: Path, packer_binary: str
) -> Iterator[tuple[Any, Any]]:
    server = start_server(["auth", "metadata", "build", "bake"], KLINK_BAKE_TIMEOUT="60")
    with server.client() as http:
        put_env(http, "cloud", **_aws_env(moto, startRetryTimeout="1s", baseImage=SOURCE_AMI))
        hello_app(http, tmp_path, bakeCommands=["echo {{version}}"])
        yield server, http


@pytest.mark.slow
def test_base_bake_on_aws_runs_packer_to_the_end(aws_server: tuple[Any, Any], ec2: Any) -> None:
    _server, http = aws_server
    lines, final = stream(http, "POST", "/bake/base", json={"target": "aws:us-east-1"})
    assert any(line.startswith("$ packer build -machine-readable") for line in lines)
    assert any("Creating AMI klink-base-" in line for line in lines)
    image = final["result"]["image"]
    described = ec2.describe_images(ImageIds=[image])["Images"][0]
    tags = {t["Key"]: t["Value"] for t in described["Tags"]}
    assert tags[TAG_ROLE] == "base"
    assert _leftovers(ec2) == NOTHING_LEFT


@pytest.mark.slow
def test_service_bake_fails_at_upload_with_packers_lines_and_leaves_nothing(
    aws_server: tuple[Any, Any], ec2: Any
) -> None:
    _server, http = aws_server
    _, built = stream(http, "POST", "/build/builds/hello")
    version = built["result"]["version"]

    dry = http.post(f"/bake/images/hello/{version}", json={"dry_run": True}).json()
    assert dry["target"] == "aws:us-east-1"
    builder = dry["template"]["builders"][0]
    assert builder["tags"][TAG_VERSION] == version
    assert builder["tags"]["klink:artifact-sha256"] == built["result"]["sha256"]
    assert builder["source_ami"] == SOURCE_AMI
    images_before = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}

    lines, final = stream(http, "POST", f"/bake/images/hello/{version}", json={})
    assert final["error"]["code"] == "command_failed"
    assert "Upload is not implemented when communicator = 'none'" in final["error"]["output"]
    assert any("Launching a source AWS instance" in line for line in lines)
    images_after = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    assert images_after == images_before
    assert _leftovers(ec2) == NOTHING_LEFT


@pytest.mark.slow
def test_the_time_limit_stops_packer_which_cleans_up(
    start_server: StartServer, moto: str, ec2: Any, packer_binary: str
) -> None:
    server = start_server(["auth", "metadata", "build", "bake"], KLINK_BAKE_TIMEOUT="4")
    with server.client() as http:
        # The shell provisioner of a base step retries its upload for 5 minutes: far past the
        # time limit. (The file provisioner of a service bake fails at once instead.)
        bake = _aws_env(moto, startRetryTimeout="5m")
        bake["bake"]["baseSteps"] = ["echo never runs"]
        put_env(http, "cloud", **bake)
        started = time.monotonic()
        _, final = stream(http, "POST", "/bake/base", json={})
        assert time.monotonic() - started < 60
    assert final["error"]["code"] == "timeout", final
    assert "did not finish within 4 seconds" in final["error"]["message"]
    assert "Provisioning with shell script" in final["error"]["output"]
    assert _leftovers(ec2) == NOTHING_LEFT
    assert ec2.describe_images(Owners=["self"])["Images"] == []


@pytest.mark.slow
def test_service_template_without_provisioners_makes_a_tagged_shared_ami(
    moto: str, ec2: Any, tmp_path: Path, packer_binary: str
) -> None:
    """The builder half of the real service template, end to end, through AwsBaker.run."""
    settings = type("S", (), {"home": tmp_path})()
    other = {**_aws_env(moto), "account_id": OTHER_ACCOUNT}
    envs = [
        {"name": "cloud", "metadata": _aws_env(moto, baseImage=SOURCE_AMI)},
        {"name": "prod", "metadata": other},
    ]
    target = targets_of(envs)["aws:us-east-1"]
    at = datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC)
    baker = AwsBaker(target=target, settings=settings, clock=lambda: at, timeout=120)
    try:
        base = baker.run(baker.base_template(at), work=tmp_path / "base", log=lambda _l: None)
        artifact = tmp_path / "hello-1.0.1.tar.gz"
        artifact.write_bytes(b"x")
        template = baker.service_template(
            app="hello",
            version="1.0.1",
            artifact=artifact,
            sha256="ab" * 32,
            bake_commands=[],
            embargo=["prod"],
            at=at,
        )
        template.pop("provisioners")
        lines: list[str] = []
        image = baker.run(template, work=tmp_path / "svc", log=lines.append)
    finally:
        baker.close()
    assert image.name == "hello-1.0.1-20261129100000"
    assert image.app == "hello"
    assert image.version == "1.0.1"
    assert image.base_image == SOURCE_AMI
    assert base.tags[TAG_ROLE] == "base"
    assert image.embargo == ("prod",)
    assert image.tags["klink:artifact-sha256"] == "ab" * 32
    assert f"sharing {image.id} with {ACCOUNT}, {OTHER_ACCOUNT}" in lines
    permissions = ec2.describe_image_attribute(ImageId=image.id, Attribute="launchPermission")
    shared = sorted(p["UserId"] for p in permissions["LaunchPermissions"])
    assert shared == [ACCOUNT, OTHER_ACCOUNT]
    assert _leftovers(ec2) == NOTHING_LEFT
