"""End to end on the aws provider against moto's server on loopback: the full plan with target
groups, scaling policies, alarms and scheduled actions, and the previous state discovered from
the cloud alone after Klink's database is wiped. Health comes from the API only (never a
connection to an address moto invents)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
import sqlalchemy as sa

from klink import store
from klink.deploy.context import Services
from klink.deploy.services import ProviderCache
from klink.deploy.tables import deploy_logs, deploy_slots, deploy_tasks, deployments
from klink.errors import NotFound
from klink.providers.base import TAG_APP, TAG_CONFIG_COMMIT, TAG_VERSION, TargetGroupSpec
from tests.deploy.conftest import World

pytestmark = pytest.mark.slow
REGION = "us-east-1"

PARAMS = {
    "instanceType": "t3.micro",
    "subnetPurpose": None,
    "desiredCapacity": 2,
    "max": 3,
    "healthCheckIntervalSeconds": 1,
    "targetGroups": ["web"],
    "policies": [{"name": "up", "scalingAdjustment": 1, "cooldown": 60}],
    "alarms": [
        {"name": "cpu-high", "metricName": "CPUUtilization", "threshold": 80, "policies": ["up"]}
    ],
    "scheduledActions": [
        {
            "name": "night",
            "recurrence": "0 22 * * *",
            "minSize": 1,
            "maxSize": 3,
            "desiredCapacity": 1,
        }
    ],
}


@pytest.fixture
def aws_world(world: World, moto: str) -> World:
    env = {
        "provider": "aws",
        "region": REGION,
        "endpoint_url": moto,
        "aws_retries": {"max_attempts": 2, "backoff_attempts": 2},
    }
    world.ok("PUT", "/metadata/environments/prod", json={"metadata": env})
    world.ok(
        "PUT", "/metadata/applications/search", json={"metadata": {"contact": "team@example.com"}}
    )
    world.ok("POST", "/config/repos/search/prod")
    base = world.services()
    cache = ProviderCache(world.runtime.settings)
    real = Services(
        metadata=base.metadata,
        config=base.config,
        provider_for=cache,
        notifier=base.notifier,
        probe=lambda url: pytest.fail(f"no HTTP probe on aws ({url})"),
        clock=base.clock,
    )
    world.runtime.extras["deploy.services"] = lambda: real
    world.runtime.extras["aws.provider"] = cache("prod", env)
    return world


def _balancer(provider: Any, moto: str, vpc: str) -> None:
    """``web`` behind a load balancer whose listener forwards to it: what weights need."""
    elbv2 = boto3.client("elbv2", endpoint_url=moto, region_name=REGION)
    ec2 = boto3.client("ec2", endpoint_url=moto, region_name=REGION)
    home = provider.ensure_target_group(TargetGroupSpec(name="web", port=8080, vpc_id=vpc))
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    lb = elbv2.create_load_balancer(Name="web", Subnets=[s["SubnetId"] for s in subnets[:2]])
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancers"][0]["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": home.id}],
    )


def _serving(provider: Any, group: Any) -> None:
    """All traffic on ``group``, its instances registered in its own target group, and no
    member target group left behind by the groups before it."""
    state = provider.traffic("web")
    assert state.weights() == {"web": 0, group.name: 100}
    assert state.get(group.name).registered == len(group.instances)
    assert len(provider.list_target_groups()) == 2  # web and the member of ``group``


def _image(ec2: Any, version: str) -> str:
    image_id: str = ec2.register_image(Name=f"search-{version}", Description="x")["ImageId"]
    ec2.create_tags(
        Resources=[image_id],
        Tags=[{"Key": TAG_APP, "Value": "search"}, {"Key": TAG_VERSION, "Value": version}],
    )
    return image_id


def _run(world: World, image: str) -> dict[str, Any]:
    deployment_id = world.deploy(image)
    engine = world.engine()
    engine.services = world.runtime.extras["deploy.services"]()
    engine.drain()
    return world.get(deployment_id)


def test_full_plan_on_moto_and_discovery_after_wiping_the_database(
    aws_world: World, moto: str
) -> None:
    world = aws_world
    provider = world.runtime.extras["aws.provider"]
    ec2 = boto3.client("ec2", endpoint_url=moto, region_name=REGION)
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    _balancer(provider, moto, vpc)
    commit = world.config(params=PARAMS, props={"service.port": 8080})
    v1, v2, v3 = _image(ec2, "1.0"), _image(ec2, "2.0"), _image(ec2, "3.0")

    d1 = _run(world, v1)
    assert d1["status"] == "completed", d1["error"]
    d2 = _run(world, v2)
    assert d2["status"] == "completed", d2["error"]
    groups = provider.list_groups(r"search-prod-v\d{3}")
    assert [g.name for g in groups] == ["search-prod-v001"]
    group = groups[0]
    assert provider.describe_launch_template(group.launch_template).image_id == v2
    assert group.tags[TAG_CONFIG_COMMIT] == commit
    assert (group.min_size, group.desired_capacity, group.max_size) == (1, 2, 3)
    assert group.suspended_processes == frozenset()
    ids = {i.id for i in group.instances}
    assert len(ids) == 2
    _serving(provider, group)
    assert [p.name for p in provider.list_scaling_policies(group.name)] == ["up"]
    assert [a.name for a in provider.list_alarms(group.name)] == ["cpu-high"]
    assert [s.name for s in provider.list_scheduled_actions(group.name)] == ["night"]
    assert provider.list_alarms("search-prod-v000") == []
    with pytest.raises(NotFound):
        provider.describe_launch_template(d1["newState"]["launch"]["name"])

    with store.write(world.runtime.engine) as conn:
        for table in (deployments, deploy_tasks, deploy_logs, deploy_slots):
            conn.execute(sa.delete(table))
    d3 = _run(world, v3)
    assert d3["status"] == "completed", d3["error"]
    previous = d3["previousState"]
    assert previous["name"] == "search-prod-v001"
    assert previous["image_id"] == v2
    assert previous["config_commit"] == commit
    assert previous["target_groups"] == ["web"]
    assert (previous["min_size"], previous["desired_capacity"], previous["max_size"]) == (1, 2, 3)
    assert [p["name"] for p in previous["policies"]] == ["up"]
    assert [a["name"] for a in previous["alarms"]] == ["cpu-high"]
    assert [s["name"] for s in previous["scheduled_actions"]] == ["night"]
    assert previous["launch"]["instance_type"] == "t3.micro"
    assert previous["launch"]["user_data"].startswith("#cloud-config")
    assert [g.name for g in provider.list_groups(r"search-prod-v\d{3}")] == ["search-prod-v002"]


def test_twenty_deployments_on_moto_with_a_fifth_of_calls_failing(
    aws_world: World, moto: str
) -> None:
    """20% of the aws provider's calls fail transiently (throttled before, or 503 after the call
    went through): twenty deployments in a row complete, one group left, nothing orphaned."""
    from dataclasses import replace

    from klink.deploy.engine import Engine
    from klink.deploy.executor import RetryPolicy
    from klink.deploy.store import DeploymentStore
    from klink.testing.faults import FaultyProvider

    world = aws_world
    provider = world.runtime.extras["aws.provider"]
    ec2 = boto3.client("ec2", endpoint_url=moto, region_name=REGION)
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    _balancer(provider, moto, vpc)
    world.config(params={**PARAMS, "desiredCapacity": 1}, props={"service.port": 8080})
    images = [_image(ec2, "1.0"), _image(ec2, "2.0")]
    faulty = FaultyProvider(provider, rate=0.2, seed=11)
    services = replace(world.runtime.extras["deploy.services"](), provider_for=lambda e, m: faulty)
    engine = Engine(
        DeploymentStore(world.runtime.engine),
        services,
        clock=world.clock,
        sleep=world.clock.sleep,
        retry=RetryPolicy(budget=12, base=0.02, cap=0.2),
    )
    for number in range(20):
        deployment_id = world.deploy(images[number % 2])
        engine.drain()
        d = world.get(deployment_id)
        assert d["status"] == "completed", (number, d["error"])
    groups = provider.list_groups(r"search-prod-v\d{3}")
    assert [g.name for g in groups] == ["search-prod-v019"]
    templates = ec2.describe_launch_templates()["LaunchTemplates"]
    assert [t["LaunchTemplateName"] for t in templates] == [groups[0].launch_template]
    _serving(provider, groups[0])
    assert [p.name for p in provider.list_scaling_policies(groups[0].name)] == ["up"]
    assert sum(faulty.failures.values()) > 40
    print(f"\naws: {sum(faulty.failures.values())} faults injected in {faulty.calls} calls")


def test_a_canary_on_moto_is_judged_on_each_groups_own_target_group(
    aws_world: World, moto: str
) -> None:
    """Each group is measured through its own member target group behind ``web`` (CloudWatch
    data put for those): the canary answering 5 % with 5xx fails and is undone."""
    from datetime import timedelta

    from klink.providers.aws.convert import member_target_group
    from tests.analysis.test_cloudwatch import put

    world = aws_world
    provider = world.runtime.extras["aws.provider"]
    ec2 = boto3.client("ec2", endpoint_url=moto, region_name=REGION)
    elbv2 = boto3.client("elbv2", endpoint_url=moto, region_name=REGION)
    _balancer(provider, moto, ec2.describe_vpcs()["Vpcs"][0]["VpcId"])
    canary = {
        "intervals": 1,
        "intervalSeconds": 300,
        "metrics": [{"name": "errors", "builtin": "error-rate", "critical": True}],
    }
    params = {**PARAMS, "strategy": "canary", "keepWarmSeconds": 0, "canary": canary}
    world.config(params=params, props={"service.port": 8080})
    v1, v2 = _image(ec2, "1.0"), _image(ec2, "2.0")
    assert _run(world, v1)["status"] == "completed"
    deployment_id = world.deploy(v2)
    engine = world.engine()
    engine.services = world.runtime.extras["deploy.services"]()
    for _ in range(2000):  # to the judgement, which starts its interval and waits for its end
        if world.get(deployment_id)["current"] == "analyse_canary" and not engine.run_once():
            break
        if not engine.run_once():
            world.clock.sleep(1)
    assert world.get(deployment_id)["current"] == "analyse_canary"
    stamps = [world.clock() + timedelta(seconds=30 + 60 * i) for i in range(5)]
    lb = elbv2.describe_load_balancers(Names=["web"])["LoadBalancers"][0]["LoadBalancerArn"]
    for group, errors in (("search-prod-v001", 10.0), ("search-prod-v002", 0.0)):
        name = member_target_group("web", group)
        arn = elbv2.describe_target_groups(Names=[name])["TargetGroups"][0]["TargetGroupArn"]
        dims = {
            "LoadBalancer": lb.partition(":loadbalancer/")[2],
            "TargetGroup": arn.rpartition(":")[2],
        }
        put(moto, dims, "RequestCount", [(t, 200.0) for t in stamps])
        put(moto, dims, "HTTPCode_Target_5XX_Count", [(t, errors) for t in stamps])
    engine.drain()
    d = world.get(deployment_id)
    assert d["undo"], d
    assert d["status"] == "completed", d["error"]
    report = world.ok("GET", f"/deploy/deployments/{deployment_id}/canary")["reports"][0]
    errors_metric = report["metrics"][0]
    assert (errors_metric["baseline"]["count"], errors_metric["canary"]["count"]) == (5, 5)
    assert errors_metric["effect"] == pytest.approx(0.05)
    assert report["criticalFailures"] == ["errors"]
    assert [g.name for g in provider.list_groups(r"search-prod-v\d{3}")] == ["search-prod-v000"]
