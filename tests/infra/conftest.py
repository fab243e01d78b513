"""Infrastructure fixtures: an aws environment on moto's server and its Cloud."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from klink.infra.live import Cloud, cloud_for
from klink.providers.aws.provider import AwsProvider


def boto(moto: str, service: str) -> Any:
    return boto3.client(service, region_name="us-east-1", endpoint_url=moto)


@pytest.fixture
def subnets(moto: str) -> list[str]:
    ec2 = boto(moto, "ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    found = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    return sorted(s["SubnetId"] for s in found["Subnets"])[:2]


@pytest.fixture
def env_metadata(moto: str, subnets: list[str]) -> dict[str, Any]:
    return {
        "provider": "aws",
        "region": "us-east-1",
        "endpoint_url": moto,
        "infra": {
            "subnets": {"public": subnets},
            "ingressRules": {"https": [{"protocol": "tcp", "ports": 443, "from": ["0.0.0.0/0"]}]},
            "defaultPolicies": {
                "logs": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}
                    ],
                }
            },
        },
    }


@pytest.fixture
def cloud(env_metadata: dict[str, Any]) -> Iterator[Cloud]:
    provider = AwsProvider.from_environment("prod", env_metadata)
    yield cloud_for(provider, env_metadata)
    provider.close()
