"""The network a group lands in: subnets by purpose, security groups by name, a subnet's VPC.

A subnet's purpose (e.g. ``internal``, ``external``) is its ``klink:purpose`` tag, written by
infrastructure; Klink picks subnets by purpose, never by id, so one deployment description
works across accounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from klink.errors import NotFound
from klink.providers.aws.convert import tags_of
from klink.providers.aws.session import AwsSession
from klink.providers.base import Subnet

TAG_PURPOSE = "klink:purpose"


class Network:
    def __init__(self, session: AwsSession) -> None:
        self.session = session

    def subnets(self, purpose: str | None = None) -> list[Subnet]:
        ec2 = self.session.client("ec2")
        filters = [{"Name": f"tag:{TAG_PURPOSE}", "Values": [purpose]}] if purpose else []

        def run() -> list[dict[str, Any]]:
            pages = ec2.get_paginator("describe_subnets").paginate(Filters=filters)
            return [raw for page in pages for raw in page["Subnets"]]

        return sorted(
            (
                Subnet(
                    id=raw["SubnetId"],
                    zone=raw["AvailabilityZone"],
                    vpc_id=raw["VpcId"],
                    purpose=tags_of(raw.get("Tags")).get(TAG_PURPOSE),
                )
                for raw in self.session.call("list subnets", run)
            ),
            key=lambda s: (s.zone, s.id),
        )

    def security_group_ids(self, names: Sequence[str], vpc_id: str | None = None) -> dict[str, str]:
        if not names:
            return {}
        ec2 = self.session.client("ec2")
        filters = [{"Name": "group-name", "Values": sorted(set(names))}]
        if vpc_id:
            filters.append({"Name": "vpc-id", "Values": [vpc_id]})

        def run() -> list[dict[str, Any]]:
            pages = ec2.get_paginator("describe_security_groups").paginate(Filters=filters)
            return [raw for page in pages for raw in page["SecurityGroups"]]

        found: dict[str, str] = {}
        for raw in self.session.call("describe security groups", run):
            found.setdefault(raw["GroupName"], raw["GroupId"])
        for name in names:
            if name not in found:
                raise NotFound(f"security group {name} not found", field="security_groups")
        return {name: found[name] for name in names}

    def vpc_of_subnet(self, subnet_id: str) -> str:
        ec2 = self.session.client("ec2")

        def run() -> list[dict[str, Any]]:
            answer = ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": [subnet_id]}])
            return list(answer["Subnets"])

        found = self.session.call(f"describe subnet {subnet_id}", run)
        if not found:
            raise NotFound(f"subnet {subnet_id} not found", field="subnet")
        return str(found[0]["VpcId"])
