"""Infrastructure after deployments moved traffic by weight, on moto's server (real boto3).

Two deployment groups are attached to the app's target group the way the deploy engine does it
(``attach_traffic``, ``set_traffic``): each has its own member target group, and the listener's
default action is a weighted forward. Infrastructure must read that listener as fronting its
target group (no plan, no drift), keep the members and their weights through any apply, carry
them over to a listener that changes port, protocol or certificate, and refuse, naming the
field, to point a listener carrying deployment groups at another target group.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from klink.infra.live import Cloud
from klink.infra.reconcile import apply_for, plan_for
from klink.providers.aws.convert import member_target_group
from klink.providers.base import GroupSpec, LaunchTemplateSpec, Provider
from tests.infra.conftest import boto
from tests.infra.test_aws import DEFINITION, apply, definition

pytestmark = pytest.mark.slow

OLD, NEW = "search-prod-v001", "search-prod-v002"
WEIGHTS = {OLD: 100, NEW: 0}  # the new group warm at 0, or an undo in its warm window


def deployed(moto: str, env_metadata: dict[str, Any], cloud: Cloud, data: Any = None) -> None:
    """``data`` (default DEFINITION) applied, then two deployment groups attached by weight."""
    apply(DEFINITION if data is None else data, env_metadata, cloud)
    attach_two_groups(moto, cloud.provider, env_metadata["infra"]["subnets"]["public"][0])


def attach_two_groups(moto: str, provider: Provider, subnet: str) -> None:
    """Two deployment groups of one instance each attached to search-web by weight, as a
    red-black deployment leaves them (the engine's own provider calls)."""
    image = boto(moto, "ec2").register_image(Name="search-1.0", Description="search")["ImageId"]
    for name in (OLD, NEW):
        template = provider.create_launch_template(
            LaunchTemplateSpec(name=name, image_id=image, instance_type="t3.micro", user_data="")
        )
        provider.create_group(
            GroupSpec(
                name=name,
                launch_template=template.name,
                min_size=1,
                max_size=1,
                desired_capacity=1,
                subnets=(subnet,),
            )
        )
        provider.attach_traffic("search-web", name)
    provider.set_traffic("search-web", {**WEIGHTS, "search-web": 0})


def forwards(moto: str) -> dict[int, dict[str, int]]:
    """Port → the listener's forward action as ELBv2 describes it: target group → weight."""
    elb = boto(moto, "elbv2")
    arn = elb.describe_load_balancers(Names=["search"])["LoadBalancers"][0]["LoadBalancerArn"]
    out = {}
    for listener in elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]:
        [action] = listener["DefaultActions"]
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
        if not groups:
            groups = [{"TargetGroupArn": action["TargetGroupArn"], "Weight": 100}]
        out[listener["Port"]] = {g["TargetGroupArn"].split("/")[1]: g["Weight"] for g in groups}
    return out


MEMBERS = {
    "search-web": 0,
    member_target_group("search-web", OLD): 100,
    member_target_group("search-web", NEW): 0,
}


def assert_members_intact(moto: str, cloud: Cloud, ports: tuple[int, ...] = (80,)) -> None:
    """Every listener still forwards by the deployments' weights; each group is still
    attached to its own target group with its instance registered."""
    assert forwards(moto) == dict.fromkeys(ports, MEMBERS)
    assert cloud.provider.traffic("search-web").weights() == {**WEIGHTS, "search-web": 0}
    asg, elb = boto(moto, "autoscaling"), boto(moto, "elbv2")
    for name in (OLD, NEW):
        member = member_target_group("search-web", name)
        raw = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        assert [a.split("/")[1] for a in raw[0]["TargetGroupARNs"]] == [member]
        arn = elb.describe_target_groups(Names=[member])["TargetGroups"][0]["TargetGroupArn"]
        assert len(elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]) == 1


def test_after_a_deployment_over_weights_the_plan_is_empty(
    moto: str, env_metadata: dict[str, Any], cloud: Cloud
) -> None:
    deployed(moto, env_metadata, cloud)
    assert forwards(moto) == {80: MEMBERS}
    plan = plan_for(DEFINITION, "search", "prod", env_metadata, cloud)
    assert plan.empty, [a.line for a in plan.actions]
    # The members' target groups are the deployments', not the file's: never pruned or kept.
    pruning = plan_for({**DEFINITION, "prune": True}, "search", "prod", env_metadata, cloud)
    assert (pruning.actions, pruning.kept) == ((), ())
    assert cloud.aws is not None
    balancers = cloud.aws.load_balancers("search", "prod", ["search"]).mine.values()
    [listener] = cloud.aws.listeners(balancers).values()
    assert listener.target_group == "search-web"
    # Applying the unchanged file (what drift's automatic apply does) touches nothing.
    _plan, result = apply_for(DEFINITION, "search", "prod", env_metadata, cloud)
    assert (result.status, result.done) == ("succeeded", ())
    assert_members_intact(moto, cloud)


def test_a_target_group_put_beside_the_members_by_hand_is_drift_and_apply_removes_it(
    moto: str, env_metadata: dict[str, Any], cloud: Cloud
) -> None:
    deployed(moto, env_metadata, cloud)
    elb = boto(moto, "elbv2")
    vpc = elb.describe_target_groups(Names=["search-web"])["TargetGroups"][0]["VpcId"]
    stray = elb.create_target_group(Name="search-stray", Port=8080, Protocol="HTTP", VpcId=vpc)
    stray_arn = stray["TargetGroups"][0]["TargetGroupArn"]
    lb = elb.describe_load_balancers(Names=["search"])["LoadBalancers"][0]["LoadBalancerArn"]
    [listener] = elb.describe_listeners(LoadBalancerArn=lb)["Listeners"]
    [action] = listener["DefaultActions"]
    action["ForwardConfig"]["TargetGroups"].append({"TargetGroupArn": stray_arn, "Weight": 0})
    elb.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=[action])

    plan = plan_for(DEFINITION, "search", "prod", env_metadata, cloud)
    assert [a.line for a in plan.actions] == [
        "update listener search:80: target_group search-stray+search-web -> search-web"
    ]
    apply(DEFINITION, env_metadata, cloud)
    assert_members_intact(moto, cloud)
    assert plan_for(DEFINITION, "search", "prod", env_metadata, cloud).empty

    # Had the stray target group all the weight, dropping it would cut every request: refused.
    action["ForwardConfig"]["TargetGroups"] = [
        {**g, "Weight": 100 if g["TargetGroupArn"] == stray_arn else 0}
        for g in action["ForwardConfig"]["TargetGroups"]
    ]
    elb.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=[action])
    _plan, result = apply_for(DEFINITION, "search", "prod", env_metadata, cloud)
    assert result.status == "failed"
    assert result.error is not None
    assert "dropping search-stray would leave no traffic anywhere" in result.error
    assert forwards(moto)[80]["search-stray"] == 100  # left as it was


@pytest.mark.parametrize(
    ("change", "expected_line"),
    [
        (
            {
                "securityGroups": {
                    **DEFINITION["securityGroups"],
                    "search-lb": {
                        "ingress": [{"protocol": "tcp", "ports": 80, "from": ["0.0.0.0/0"]}]
                    },
                }
            },
            "update security group search-lb: ingress +tcp 80 0.0.0.0/0, -tcp 443 0.0.0.0/0",
        ),
        (
            {"targetGroups": {"search-web": {"port": 8080, "healthCheck": {"path": "/ready"}}}},
            "update target group search-web: health_check_path /healthcheck -> /ready",
        ),
    ],
    ids=["security group rule", "health-check path"],
)
def test_an_unrelated_apply_keeps_the_weighted_forward_and_the_members(
    moto: str,
    env_metadata: dict[str, Any],
    cloud: Cloud,
    change: dict[str, Any],
    expected_line: str,
) -> None:
    deployed(moto, env_metadata, cloud)
    changed = definition(**change)
    plan = plan_for(changed, "search", "prod", env_metadata, cloud)
    apply(changed, env_metadata, cloud)
    assert_members_intact(moto, cloud)  # first: what the old reconciliation broke
    assert [a.line for a in plan.actions] == [expected_line]
    assert plan_for(changed, "search", "prod", env_metadata, cloud).empty
    if "targetGroups" in change:
        # The members are search-web's copies: their instances are checked on the new path.
        elb = boto(moto, "elbv2")
        for name in ("search-web", *(member_target_group("search-web", g) for g in WEIGHTS)):
            tg = elb.describe_target_groups(Names=[name])["TargetGroups"][0]
            assert tg["HealthCheckPath"] == "/ready", name


def _https(data: dict[str, Any], port: int) -> dict[str, Any]:
    out = copy.deepcopy(data)
    out["loadBalancers"]["search"]["listeners"] = [
        {"port": port, "protocol": "HTTPS", "targetGroup": "search-web", "certificate": "search"}
    ]
    return out


def test_protocol_and_certificate_changes_keep_the_weights(
    moto: str, env_metadata: dict[str, Any], cloud: Cloud
) -> None:
    acm = boto(moto, "acm")
    first = acm.request_certificate(DomainName="search.example.com")["CertificateArn"]
    second = acm.request_certificate(DomainName="search2.example.com")["CertificateArn"]
    env_metadata["infra"]["certificates"] = {"search": first}
    deployed(moto, env_metadata, cloud)

    secure = _https(DEFINITION, 80)  # the same listener, HTTP -> HTTPS
    plan = plan_for(secure, "search", "prod", env_metadata, cloud)
    apply(secure, env_metadata, cloud)
    assert_members_intact(moto, cloud)
    assert [a.line for a in plan.actions] == [
        f"update listener search:80: protocol HTTP -> HTTPS; certificate null -> {first}"
    ]
    assert plan_for(secure, "search", "prod", env_metadata, cloud).empty

    env_metadata["infra"]["certificates"] = {"search": second}  # the certificate is renewed
    plan = plan_for(secure, "search", "prod", env_metadata, cloud)
    assert [a.line for a in plan.actions] == [
        f"update listener search:80: certificate {first} -> {second}"
    ]
    apply(secure, env_metadata, cloud)
    assert_members_intact(moto, cloud)
    elb = boto(moto, "elbv2")
    lb = elb.describe_load_balancers(Names=["search"])["LoadBalancers"][0]["LoadBalancerArn"]
    [listener] = elb.describe_listeners(LoadBalancerArn=lb)["Listeners"]
    assert (listener["Protocol"], listener["Certificates"][0]["CertificateArn"]) == (
        "HTTPS",
        second,
    )
    # A shift after the change still moves every listener, in one call each.
    cloud.provider.set_traffic("search-web", {OLD: 0, NEW: 100})
    assert cloud.provider.traffic("search-web").weights() == {OLD: 0, NEW: 100, "search-web": 0}


def test_a_port_change_gives_the_new_listener_the_deployments_weights(
    moto: str, env_metadata: dict[str, Any], cloud: Cloud
) -> None:
    deployed(moto, env_metadata, cloud)
    moved = copy.deepcopy(DEFINITION)
    moved["prune"] = True
    moved["loadBalancers"]["search"]["listeners"] = [{"port": 8080, "targetGroup": "search-web"}]
    plan = plan_for(moved, "search", "prod", env_metadata, cloud)
    assert [a.line for a in plan.actions] == [
        "create listener search:8080",
        "delete listener search:80",
    ]
    apply(moved, env_metadata, cloud)
    assert_members_intact(moto, cloud, ports=(8080,))
    assert plan_for(moved, "search", "prod", env_metadata, cloud).empty
    cloud.provider.set_traffic("search-web", {OLD: 0, NEW: 100})  # the deployment goes on
    assert set(forwards(moto)[8080].items()) >= {(member_target_group("search-web", NEW), 100)}

    # Without prune the old port stays: both listeners carry the same weights.
    both = copy.deepcopy(moved)
    both["prune"] = False
    both["loadBalancers"]["search"]["listeners"].append({"port": 81, "targetGroup": "search-web"})
    apply(both, env_metadata, cloud)
    shown = forwards(moto)
    assert shown[81] == shown[8080]
    assert shown[81][member_target_group("search-web", NEW)] == 100


def test_a_target_group_change_is_refused_while_deployment_groups_are_attached(
    moto: str, env_metadata: dict[str, Any], cloud: Cloud
) -> None:
    deployed(moto, env_metadata, cloud)
    switched = copy.deepcopy(DEFINITION)
    switched["targetGroups"]["search-api"] = {"port": 8081}
    switched["loadBalancers"]["search"]["listeners"] = [{"port": 80, "targetGroup": "search-api"}]
    plan, result = apply_for(switched, "search", "prod", env_metadata, cloud)
    assert result.status == "failed"
    assert [a.line for a in plan.actions] == [
        "create target group search-api",
        "update listener search:80: target_group search-web -> search-api",
    ]
    assert result.failed is not None
    assert result.failed.line == "update listener search:80: target_group search-web -> search-api"
    assert result.error is not None
    assert "target group cannot change to search-api" in result.error
    assert f"{OLD} (weight 100), {NEW} (weight 0)" in result.error
    assert_members_intact(moto, cloud)  # refused before anything was sent

    # Once the deployment groups are gone from search-web, the listener may move.
    provider = cloud.provider
    provider.set_traffic("search-web", {"search-web": 100, OLD: 0})
    provider.detach_traffic("search-web", OLD)
    provider.detach_traffic("search-web", NEW)
    apply(switched, env_metadata, cloud)
    assert forwards(moto) == {80: {"search-api": 100}}
    assert plan_for(switched, "search", "prod", env_metadata, cloud).empty
