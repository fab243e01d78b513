"""Plan and apply against moto's server with real boto3: the issue's scenarios."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from klink.errors import Conflict, InvalidInput
from klink.infra.live import Cloud, cloud_for
from klink.infra.reconcile import apply_for, plan_for
from klink.providers.aws.provider import AwsProvider
from tests.aws.faults import FaultInjector
from tests.infra.conftest import boto

pytestmark = pytest.mark.slow

S3_READ = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
}

DEFINITION: dict[str, Any] = {
    "securityGroups": {
        "search-lb": {"ingress": [{"use": "https"}]},
        "search-web": {
            "description": "search web instances",
            "ingress": [
                {"protocol": "tcp", "ports": 8080, "from": ["search-lb"]},
                {"protocol": "tcp", "ports": 22, "from": ["10.0.0.0/8"]},
            ],
        },
    },
    "targetGroups": {
        "search-web": {"port": 8080, "healthCheck": {"path": "/healthcheck"}},
    },
    "loadBalancers": {
        "search": {
            "subnets": "public",
            "securityGroups": ["search-lb"],
            "listeners": [{"port": 80, "targetGroup": "search-web"}],
        }
    },
    "role": {"policies": {"s3": S3_READ}},
}


def definition(**changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(DEFINITION)
    result.update(changes)
    return result


def ops(plan: Any) -> list[tuple[str, str, str]]:
    return [(a.op, a.kind, a.name) for a in plan.actions]


def apply(data: Any, env_metadata: dict[str, Any], cloud: Cloud) -> Any:
    plan, result = apply_for(data, "search", "prod", env_metadata, cloud)
    assert result.status == "succeeded", result.to_json()
    return plan


def test_create_from_nothing_then_apply_twice_is_a_no_op(
    moto: str, env_metadata: dict[str, Any], cloud: Cloud
) -> None:
    plan = plan_for(DEFINITION, "search", "prod", env_metadata, cloud)
    assert ops(plan) == [
        ("create", "security_group", "search-lb"),
        ("create", "security_group", "search-web"),
        ("create", "target_group", "search-web"),
        ("create", "load_balancer", "search"),
        ("create", "listener", "search:80"),
        ("create", "role", "search-prod"),
    ]
    apply(DEFINITION, env_metadata, cloud)

    # What AWS now holds, read with boto3 directly.
    ec2, elb, iam = boto(moto, "ec2"), boto(moto, "elbv2"), boto(moto, "iam")
    groups = {
        g["GroupName"]: g
        for g in ec2.describe_security_groups(
            Filters=[{"Name": "tag:klink:app", "Values": ["search"]}]
        )["SecurityGroups"]
    }
    assert set(groups) == {"search-lb", "search-web"}
    web = groups["search-web"]
    assert {
        (p["FromPort"], g["GroupId"])
        for p in web["IpPermissions"]
        for g in p.get("UserIdGroupPairs", [])
    } == {(8080, groups["search-lb"]["GroupId"])}
    lb = elb.describe_load_balancers(Names=["search"])["LoadBalancers"][0]
    assert lb["SecurityGroups"] == [groups["search-lb"]["GroupId"]]
    tags = {
        t["Key"]: t["Value"]
        for t in elb.describe_tags(ResourceArns=[lb["LoadBalancerArn"]])["TagDescriptions"][0][
            "Tags"
        ]
    }
    assert tags["klink:managed-by"] == "infra"
    assert tags["klink:app"] == "search"
    listener = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"][0]
    assert listener["Port"] == 80
    assert ":targetgroup/search-web/" in listener["DefaultActions"][0]["TargetGroupArn"]
    listener_tags = elb.describe_tags(ResourceArns=[listener["ListenerArn"]])["TagDescriptions"]
    assert {t["Key"]: t["Value"] for t in listener_tags[0]["Tags"]}["klink:app"] == "search"
    assert sorted(iam.list_role_policies(RoleName="search-prod")["PolicyNames"]) == ["logs", "s3"]
    profile = iam.get_instance_profile(InstanceProfileName="search-prod")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == ["search-prod"]

    again = plan_for(DEFINITION, "search", "prod", env_metadata, cloud)
    assert again.actions == (), [a.line for a in again.actions]


@pytest.mark.parametrize(
    ("change", "expected_line", "check"),
    [
        (
            {
                "securityGroups": {
                    **DEFINITION["securityGroups"],
                    "search-web": {
                        "description": "search web instances",
                        "ingress": [
                            {"protocol": "tcp", "ports": 8080, "from": ["search-lb"]},
                            {"protocol": "tcp", "ports": 22, "from": ["10.1.0.0/16"]},
                        ],
                    },
                }
            },
            "update security group search-web: ingress +tcp 22 10.1.0.0/16, -tcp 22 10.0.0.0/8",
            "ingress",
        ),
        (
            {"targetGroups": {"search-web": {"port": 8080, "healthCheck": {"path": "/ready"}}}},
            "update target group search-web: health_check_path /healthcheck -> /ready",
            "health",
        ),
        (
            {
                "role": {
                    "policies": {
                        "s3": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}
                            ],
                        }
                    }
                }
            },
            "update IAM role search-prod: policy s3 changed",
            "policy",
        ),
    ],
    ids=["ingress rule", "health-check path", "policy document"],
)
def test_a_change_is_planned_exactly_and_applied(
    moto: str,
    env_metadata: dict[str, Any],
    cloud: Cloud,
    change: dict[str, Any],
    expected_line: str,
    check: str,
) -> None:
    apply(DEFINITION, env_metadata, cloud)
    changed = definition(**change)
    plan = plan_for(changed, "search", "prod", env_metadata, cloud)
    assert [a.line for a in plan.actions] == [expected_line]
    apply(changed, env_metadata, cloud)
    assert plan_for(changed, "search", "prod", env_metadata, cloud).actions == ()

    if check == "ingress":
        ec2 = boto(moto, "ec2")
        group = ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": ["search-web"]}]
        )["SecurityGroups"][0]
        cidrs = {r["CidrIp"] for p in group["IpPermissions"] for r in p.get("IpRanges", [])}
        assert cidrs == {"10.1.0.0/16"}
    elif check == "health":
        elb = boto(moto, "elbv2")
        tg = elb.describe_target_groups(Names=["search-web"])["TargetGroups"][0]
        assert tg["HealthCheckPath"] == "/ready"
    else:
        iam = boto(moto, "iam")
        doc = iam.get_role_policy(RoleName="search-prod", PolicyName="s3")["PolicyDocument"]
        assert doc["Statement"][0]["Action"] == "s3:PutObject"


def test_a_rule_added_behind_klinks_back_is_drift_and_apply_reverts_it(
    moto: str, env_metadata: dict[str, Any], cloud: Cloud
) -> None:
    apply(DEFINITION, env_metadata, cloud)
    ec2 = boto(moto, "ec2")
    group_id = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["search-web"]}]
    )["SecurityGroups"][0]["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 3306,
                "ToPort": 3306,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    plan = plan_for(DEFINITION, "search", "prod", env_metadata, cloud)
    assert [a.line for a in plan.actions] == [
        "update security group search-web: ingress -tcp 3306 0.0.0.0/0"
    ]
    apply(DEFINITION, env_metadata, cloud)
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    assert all(p.get("FromPort") != 3306 for p in group["IpPermissions"])
    assert plan_for(DEFINITION, "search", "prod", env_metadata, cloud).actions == ()


def test_prune_off_keeps_removed_resources_prune_on_deletes_them(
    moto: str, env_metadata: dict[str, Any], cloud: Cloud
) -> None:
    apply(DEFINITION, env_metadata, cloud)
    smaller = definition(loadBalancers={}, role=None)
    del smaller["role"]
    smaller["securityGroups"] = {"search-web": {"ingress": []}}

    plan = plan_for(smaller, "search", "prod", env_metadata, cloud)
    assert all(a.op != "delete" for a in plan.actions)
    assert len(plan.kept) == 4  # search-lb, the load balancer, its listener, the role
    apply(smaller, env_metadata, cloud)
    elb, iam = boto(moto, "elbv2"), boto(moto, "iam")
    assert elb.describe_load_balancers(Names=["search"])["LoadBalancers"]
    assert iam.get_role(RoleName="search-prod")["Role"]

    pruned = {**smaller, "prune": True}
    plan = plan_for(pruned, "search", "prod", env_metadata, cloud)
    assert ops(plan) == [
        ("delete", "role", "search-prod"),
        ("delete", "listener", "search:80"),
        ("delete", "load_balancer", "search"),
        ("delete", "security_group", "search-lb"),
    ]
    apply(pruned, env_metadata, cloud)
    names = [lb["LoadBalancerName"] for lb in elb.describe_load_balancers()["LoadBalancers"]]
    assert "search" not in names
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert "search-prod" not in roles
    ec2 = boto(moto, "ec2")
    left = {g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert "search-lb" not in left
    assert "search-web" in left
    # Read back through Klink's own AWS boundary too: nothing of the pruned kinds is left, and
    # planning again finds nothing to do (moto keeps the deleted load balancer's ARN on the
    # target group, as AWS can in a race; the provider reads past it).
    assert plan_for(pruned, "search", "prod", env_metadata, cloud).actions == ()
    assert cloud.aws is not None
    assert cloud.aws.load_balancers("search", "prod", []).mine == {}
    assert cloud.aws.roles("search", "prod", []).mine == {}
    assert set(cloud.aws.security_groups("search", "prod", []).mine) == {"search-web"}
    # The kept target group still changes in place (its members are looked for through the
    # listeners of a balancer that is gone).
    pruned["targetGroups"]["search-web"]["healthCheck"]["path"] = "/ready"
    apply(pruned, env_metadata, cloud)
    assert (
        elb.describe_target_groups(Names=["search-web"])["TargetGroups"][0]["HealthCheckPath"]
        == "/ready"
    )


def test_a_stale_plan_hash_is_refused(env_metadata: dict[str, Any], cloud: Cloud) -> None:
    shown = plan_for(DEFINITION, "search", "prod", env_metadata, cloud)
    apply(DEFINITION, env_metadata, cloud)
    with pytest.raises(Conflict, match="plan changed") as caught:
        apply_for(DEFINITION, "search", "prod", env_metadata, cloud, plan_hash=shown.plan_hash)
    assert caught.value.status == 409


def test_rules_may_name_a_shared_group_of_the_environment(
    moto: str, env_metadata: dict[str, Any], cloud: Cloud
) -> None:
    env_metadata["infra"]["securityGroups"] = ["shared-monitoring"]
    data = {
        "securityGroups": {
            "search-web": {
                "ingress": [{"protocol": "tcp", "ports": 9100, "from": ["shared-monitoring"]}]
            }
        }
    }
    with pytest.raises(InvalidInput, match="does not exist") as caught:
        plan_for(data, "search", "prod", env_metadata, cloud)
    assert caught.value.field == "securityGroups.search-web"

    ec2 = boto(moto, "ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    shared = ec2.create_security_group(
        GroupName="shared-monitoring", Description="monitoring", VpcId=vpc["VpcId"]
    )["GroupId"]
    apply(data, env_metadata, cloud)
    web = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["search-web"]}])[
        "SecurityGroups"
    ][0]
    pairs = [g["GroupId"] for p in web["IpPermissions"] for g in p.get("UserIdGroupPairs", [])]
    assert pairs == [shared]
    assert plan_for(data, "search", "prod", env_metadata, cloud).empty
    # The shared group is not the app's: never in its plan, even with prune.
    pruned = plan_for({**data, "prune": True}, "search", "prod", env_metadata, cloud)
    assert pruned.empty


def test_a_failure_stops_the_apply_and_the_next_run_continues(
    moto: str, env_metadata: dict[str, Any], cloud: Cloud
) -> None:
    broken = copy.deepcopy(DEFINITION)
    broken["loadBalancers"]["search"]["subnets"] = ["subnet-doesnotexist"]
    plan, result = apply_for(broken, "search", "prod", env_metadata, cloud)
    assert result.status == "failed"
    assert [a.name for a in result.done] == ["search-lb", "search-web", "search-web"]
    assert result.failed is not None
    assert result.failed.line == "create load balancer search"
    assert result.error
    assert [a.line for a in result.not_done] == [
        "create listener search:80",
        "create IAM role search-prod",
    ]
    # The fixed definition's plan starts where the failed apply stopped.
    plan = plan_for(DEFINITION, "search", "prod", env_metadata, cloud)
    assert ops(plan) == [
        ("create", "load_balancer", "search"),
        ("create", "listener", "search:80"),
        ("create", "role", "search-prod"),
    ]
    apply(DEFINITION, env_metadata, cloud)
    assert plan_for(DEFINITION, "search", "prod", env_metadata, cloud).empty


def test_load_balancer_groups_and_listener_target_change_in_place(
    moto: str, env_metadata: dict[str, Any], cloud: Cloud
) -> None:
    apply(DEFINITION, env_metadata, cloud)
    elb = boto(moto, "elbv2")
    arn = elb.describe_load_balancers(Names=["search"])["LoadBalancers"][0]["LoadBalancerArn"]
    changed = copy.deepcopy(DEFINITION)
    changed["targetGroups"]["search-api"] = {"port": 8081}
    lb = changed["loadBalancers"]["search"]
    lb["securityGroups"] = ["search-lb", "search-web"]
    lb["listeners"] = [{"port": 80, "targetGroup": "search-api"}]
    plan = plan_for(changed, "search", "prod", env_metadata, cloud)
    assert [a.line for a in plan.actions] == [
        "create target group search-api",
        "update load balancer search: security_groups [search-lb] -> [search-lb, search-web]",
        "update listener search:80: target_group search-web -> search-api",
    ]
    apply(changed, env_metadata, cloud)
    now = elb.describe_load_balancers(Names=["search"])["LoadBalancers"][0]
    assert now["LoadBalancerArn"] == arn  # changed in place, not replaced
    assert len(now["SecurityGroups"]) == 2
    listener = elb.describe_listeners(LoadBalancerArn=arn)["Listeners"][0]
    assert ":targetgroup/search-api/" in listener["DefaultActions"][0]["TargetGroupArn"]
    assert plan_for(changed, "search", "prod", env_metadata, cloud).empty


def test_throttling_is_retried_at_the_provider_boundary(
    moto: str, env_metadata: dict[str, Any]
) -> None:
    # botocore's retries (the one layer) sleep through the session's fake sleep.
    env_metadata["aws_retries"] = {"max_attempts": 10}
    slept: list[float] = []
    provider = AwsProvider.from_environment("prod", env_metadata, sleep=slept.append)
    faults = FaultInjector(0.3).attach(provider.session)
    try:
        cloud = cloud_for(provider, env_metadata)
        apply(DEFINITION, env_metadata, cloud)
        assert plan_for(DEFINITION, "search", "prod", env_metadata, cloud).empty
    finally:
        provider.close()
    assert faults.injected > 5
    assert len(slept) == faults.injected


def test_an_https_listener_takes_a_certificate_named_by_the_environment(
    moto: str, env_metadata: dict[str, Any], cloud: Cloud
) -> None:
    acm = boto(moto, "acm")
    first = acm.request_certificate(DomainName="search.example.com")["CertificateArn"]
    second = acm.request_certificate(DomainName="search2.example.com")["CertificateArn"]
    env_metadata["infra"]["certificates"] = {"search": first}
    data = copy.deepcopy(DEFINITION)
    data["loadBalancers"]["search"]["listeners"].append(
        {"port": 443, "protocol": "HTTPS", "targetGroup": "search-web", "certificate": "search"}
    )
    apply(data, env_metadata, cloud)
    elb = boto(moto, "elbv2")
    arn = elb.describe_load_balancers(Names=["search"])["LoadBalancers"][0]["LoadBalancerArn"]
    https = {x["Port"]: x for x in elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]}[443]
    assert https["Protocol"] == "HTTPS"
    assert https["Certificates"][0]["CertificateArn"] == first
    assert plan_for(data, "search", "prod", env_metadata, cloud).empty

    env_metadata["infra"]["certificates"] = {"search": second}  # the certificate is renewed
    plan = plan_for(data, "search", "prod", env_metadata, cloud)
    assert [a.line for a in plan.actions] == [
        f"update listener search:443: certificate {first} -> {second}"
    ]
    apply(data, env_metadata, cloud)
    https = {x["Port"]: x for x in elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]}[443]
    assert https["Certificates"][0]["CertificateArn"] == second
    assert plan_for(data, "search", "prod", env_metadata, cloud).empty
