"""Network: subnets by purpose tag with their zones, security groups by name, a subnet's VPC."""

from __future__ import annotations

from typing import Any

import pytest

from klink.errors import NotFound
from klink.providers.aws import AwsProvider
from klink.providers.aws.network import TAG_PURPOSE

pytestmark = pytest.mark.slow


def test_subnets_by_purpose_with_zones(provider: AwsProvider, ec2: Any) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    made = {}
    for cidr, zone, purpose in (
        ("10.20.1.0/24", "us-east-1a", "internal"),
        ("10.20.2.0/24", "us-east-1b", "internal"),
        ("10.20.3.0/24", "us-east-1a", "external"),
    ):
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]
        ec2.create_tags(
            Resources=[subnet["SubnetId"]], Tags=[{"Key": TAG_PURPOSE, "Value": purpose}]
        )
        made[cidr] = subnet["SubnetId"]
    internal = provider.subnets("internal")
    assert [(s.id, s.zone, s.vpc_id, s.purpose) for s in internal] == [
        (made["10.20.1.0/24"], "us-east-1a", vpc, "internal"),
        (made["10.20.2.0/24"], "us-east-1b", vpc, "internal"),
    ]
    assert [s.id for s in provider.subnets("external")] == [made["10.20.3.0/24"]]
    assert provider.subnets("nothing") == []
    everything = provider.subnets()
    assert set(made.values()) < {s.id for s in everything}  # plus the default VPC's
    assert provider.vpc_of_subnet(made["10.20.3.0/24"]) == vpc
    with pytest.raises(NotFound) as caught:
        provider.vpc_of_subnet("subnet-0123456789abcdef0")
    assert caught.value.field == "subnet"


def test_security_groups_by_name(provider: AwsProvider, ec2: Any) -> None:
    web = ec2.create_security_group(GroupName="search-web", Description="web")["GroupId"]
    ops = ec2.create_security_group(GroupName="ops", Description="ops")["GroupId"]
    assert provider.security_group_ids(["search-web", "ops"]) == {"search-web": web, "ops": ops}
    assert provider.security_group_ids([]) == {}
    with pytest.raises(NotFound, match="search-db") as caught:
        provider.security_group_ids(["ops", "search-db"])
    assert caught.value.field == "security_groups"
