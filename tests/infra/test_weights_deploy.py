"""Infrastructure and real red-black deployments over weights, on moto's server.

The load balancer, its listener and the target group come from ``infrastructure.yaml``
(reconciled through the infra service's own code); the deploy engine then runs red-black
deployments (attach at weight 0, health through ELBv2, all traffic in one ModifyListener, the
old group warm, then retired). Infrastructure must see no change afterwards, and an apply of
an unrelated change must leave the deployment's traffic where it is, so that the next
deployment goes on from it.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from klink.infra.live import cloud_for
from klink.infra.reconcile import apply_for, plan_for
from tests.deploy.conftest import World, world  # noqa: F401  (the deploy world fixture)
from tests.deploy.test_aws_e2e import REGION, _image, _run, aws_world  # noqa: F401

pytestmark = pytest.mark.slow

DEFINITION: dict[str, Any] = {
    "targetGroups": {"search-web": {"port": 8080, "healthCheck": {"path": "/healthcheck"}}},
    "loadBalancers": {
        "search": {
            "subnets": "public",
            "listeners": [{"port": 80, "targetGroup": "search-web"}],
        }
    },
}


def test_after_red_black_deployments_infra_sees_no_change_and_keeps_the_traffic(
    aws_world: World,  # noqa: F811
    moto: str,
) -> None:
    deploys = aws_world
    provider = deploys.runtime.extras["aws.provider"]
    ec2 = boto3.client("ec2", endpoint_url=moto, region_name=REGION)
    elb = boto3.client("elbv2", endpoint_url=moto, region_name=REGION)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    found = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    subnets = sorted(s["SubnetId"] for s in found["Subnets"])[:2]
    env = deploys.ok("GET", "/metadata/environments/prod")["metadata"]
    env["infra"] = {"subnets": {"public": subnets}}
    cloud = cloud_for(provider, env)
    _plan, result = apply_for(DEFINITION, "search", "prod", env, cloud)
    assert result.status == "succeeded", result.to_json()

    deploys.config(
        params={
            "instanceType": "t3.micro",
            "subnetPurpose": None,
            "desiredCapacity": 2,
            "max": 2,
            "healthCheckIntervalSeconds": 1,
            "targetGroups": ["search-web"],
        },
        props={"service.port": 8080},
    )
    v1, v2, v3 = _image(ec2, "1.0"), _image(ec2, "2.0"), _image(ec2, "3.0")
    for image in (v1, v2):
        done = _run(deploys, image)
        assert done["status"] == "completed", done["error"]
    [serving] = provider.list_groups(r"search-prod-v\d{3}")
    assert provider.traffic("search-web").weights() == {"search-web": 0, serving.name: 100}

    plan = plan_for(DEFINITION, "search", "prod", env, cloud)
    assert plan.empty, [a.line for a in plan.actions]

    changed: dict[str, Any] = {
        **DEFINITION,
        "targetGroups": {"search-web": {"port": 8080, "healthCheck": {"path": "/ready"}}},
    }
    _plan, result = apply_for(changed, "search", "prod", env, cloud)
    assert result.status == "succeeded", result.to_json()
    state = provider.traffic("search-web")
    assert state.weights() == {"search-web": 0, serving.name: 100}
    member = state.get(serving.name)
    assert member is not None
    assert member.registered == 2
    assert member.target is not None
    tg = elb.describe_target_groups(Names=[member.target])["TargetGroups"][0]
    assert tg["HealthCheckPath"] == "/ready"  # the serving group is checked on the new path
    assert plan_for(changed, "search", "prod", env, cloud).empty

    # The next deployment goes on from there, and infrastructure still sees nothing to do.
    done = _run(deploys, v3)
    assert done["status"] == "completed", done["error"]
    [newest] = provider.list_groups(r"search-prod-v\d{3}")
    assert newest.name != serving.name
    assert provider.traffic("search-web").weights() == {"search-web": 0, newest.name: 100}
    assert plan_for(changed, "search", "prod", env, cloud).empty
