"""Fixtures for the AWS provider tests: a provider on moto's server, and the cloud around it.

Setup that Klink does not do itself (VPCs, subnets, AMIs, load balancers) goes through plain
boto3 against the same moto server. Sleeping is recorded, never done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from klink.providers.aws import AwsProvider, AwsSession, RoleCredentialCache
from klink.providers.aws.session import AwsConfig
from klink.providers.base import TAG_APP, TAG_VERSION

REGION = "us-east-1"


@dataclass
class Sleeps:
    """A sleep that records instead of sleeping."""

    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now


def environment(moto: str, **extra: Any) -> dict[str, Any]:
    """An aws environment record pointing at moto; botocore's retries (the one retry layer)
    sleep through the recorded sleep."""
    return {
        "provider": "aws",
        "region": REGION,
        "endpoint_url": moto,
        "aws_retries": {"max_attempts": 4},
        **extra,
    }


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_provider(moto: str, sleeps: Sleeps) -> Iterator[Callable[..., AwsProvider]]:
    made: list[AwsProvider] = []

    def make(credentials: RoleCredentialCache | None = None, **extra: Any) -> AwsProvider:
        config = AwsConfig.from_metadata(environment(moto, **extra))
        cache = credentials if credentials is not None else RoleCredentialCache()
        session = AwsSession(config, sleep=sleeps, credentials=cache)
        provider = AwsProvider(session, "test")
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture
def provider(make_provider: Callable[..., AwsProvider]) -> AwsProvider:
    return make_provider()


@pytest.fixture
def ec2(moto: str) -> Any:
    return boto3.client("ec2", endpoint_url=moto, region_name=REGION)


@pytest.fixture
def elbv2(moto: str) -> Any:
    return boto3.client("elbv2", endpoint_url=moto, region_name=REGION)


@pytest.fixture
def asg(moto: str) -> Any:
    return boto3.client("autoscaling", endpoint_url=moto, region_name=REGION)


@pytest.fixture
def subnet(ec2: Any) -> dict[str, str]:
    """A subnet of the default VPC: {"id", "vpc", "zone"}."""
    raw = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])
    first = sorted(raw["Subnets"], key=lambda s: s["AvailabilityZone"])[0]
    return {"id": first["SubnetId"], "vpc": first["VpcId"], "zone": first["AvailabilityZone"]}


def register_image(ec2: Any, name: str, tags: dict[str, str] | None = None) -> str:
    image_id: str = ec2.register_image(Name=name, Description=name)["ImageId"]
    if tags:
        ec2.create_tags(
            Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
        )
    return image_id


@pytest.fixture
def image(ec2: Any) -> str:
    return register_image(
        ec2, "search-3.14-20260101000000", {TAG_APP: "search", TAG_VERSION: "3.14"}
    )
