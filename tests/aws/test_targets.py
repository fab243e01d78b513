"""Target groups: ensure (create, update in place, refuse what cannot change), describe, list,
register/deregister instances and their health as ELBv2 reports it."""

from __future__ import annotations

from typing import Any

import pytest

from klink.errors import Conflict, InvalidInput, NotFound
from klink.providers.aws import AwsProvider
from klink.providers.base import TARGET_STATES, TargetGroupSpec

pytestmark = pytest.mark.slow


def tg_spec(vpc: str, **extra: Any) -> TargetGroupSpec:
    return TargetGroupSpec(name="search-prod", port=8080, vpc_id=vpc, **extra)


def instances(ec2: Any, image: str, subnet: dict[str, str], count: int) -> list[str]:
    made = ec2.run_instances(ImageId=image, MinCount=count, MaxCount=count, SubnetId=subnet["id"])[
        "Instances"
    ]
    return sorted(i["InstanceId"] for i in made)


def test_ensure_creates_then_updates_in_place(
    provider: AwsProvider, subnet: dict[str, str]
) -> None:
    created = provider.ensure_target_group(
        tg_spec(subnet["vpc"], tags={"klink:app": "search"}, deregistration_delay_seconds=45)
    )
    assert created.id.startswith("arn:aws:elasticloadbalancing:")
    assert (created.port, created.protocol, created.vpc_id) == (8080, "HTTP", subnet["vpc"])
    assert created.health_check_path == "/healthcheck"
    assert created.health_check_interval_seconds == 5
    assert (created.healthy_threshold, created.unhealthy_threshold) == (2, 2)
    assert created.deregistration_delay_seconds == 45
    assert created.tags == {"klink:app": "search"}
    assert created.load_balancers == ()
    assert created.frontend_port is None

    updated = provider.ensure_target_group(
        tg_spec(
            subnet["vpc"],
            health_check_path="/ready",
            health_check_interval_seconds=10,
            healthy_threshold=3,
            deregistration_delay_seconds=5,
        )
    )
    assert updated.id == created.id  # the same target group, changed in place
    assert updated.health_check_path == "/ready"
    assert updated.health_check_interval_seconds == 10
    assert updated.healthy_threshold == 3
    assert updated.deregistration_delay_seconds == 5
    assert provider.describe_target_group("search-prod") == updated
    assert [t.name for t in provider.list_target_groups()] == ["search-prod"]


def test_ensure_refuses_what_cannot_change_in_place(
    provider: AwsProvider, subnet: dict[str, str]
) -> None:
    provider.ensure_target_group(tg_spec(subnet["vpc"]))
    with pytest.raises(Conflict, match="another port") as refused:
        provider.ensure_target_group(
            TargetGroupSpec(name="search-prod", port=9090, vpc_id=subnet["vpc"])
        )
    assert refused.value.field == "port"
    with pytest.raises(InvalidInput) as caught:
        provider.ensure_target_group(TargetGroupSpec(name="search-poke", port=8080))
    assert caught.value.field == "vpc_id"


def test_frontend_port_is_read_from_the_listener_forwarding_to_it(
    provider: AwsProvider, subnet: dict[str, str], ec2: Any, elbv2: Any
) -> None:
    target_group = provider.ensure_target_group(tg_spec(subnet["vpc"]))
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [subnet["vpc"]]}])
    balancer = elbv2.create_load_balancer(
        Name="search-prod", Subnets=[s["SubnetId"] for s in subnets["Subnets"][:2]]
    )["LoadBalancers"][0]
    elbv2.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": target_group.id}],
    )
    described = provider.describe_target_group("search-prod")
    assert described.frontend_port == 80
    assert described.load_balancers == (balancer["LoadBalancerArn"],)


def test_register_health_deregister(
    provider: AwsProvider, subnet: dict[str, str], ec2: Any, image: str
) -> None:
    provider.ensure_target_group(tg_spec(subnet["vpc"]))
    ids = instances(ec2, image, subnet, 3)
    provider.register_instances("search-prod", ids)
    provider.register_instances("search-prod", ids[:1])  # idempotent
    health = provider.target_health("search-prod")
    assert [h.instance_id for h in health] == ids
    # moto's gap: every target is "healthy" at once; real ELBv2 starts them at "initial".
    assert all(h.state in TARGET_STATES for h in health)
    assert all(h.port == 8080 for h in health)
    provider.deregister_instances("search-prod", ids[:2])
    provider.deregister_instances("search-prod", ids[:2])  # idempotent
    assert [h.instance_id for h in provider.target_health("search-prod")] == ids[2:]


def test_terminated_instances_are_deregistered_explicitly(
    provider: AwsProvider, subnet: dict[str, str], ec2: Any, image: str
) -> None:
    provider.ensure_target_group(tg_spec(subnet["vpc"]))
    ids = instances(ec2, image, subnet, 2)
    provider.register_instances("search-prod", ids)
    ec2.terminate_instances(InstanceIds=ids[:1])
    # moto's gap: a terminated instance stays registered, so Klink deregisters explicitly.
    provider.deregister_instances("search-prod", ids[:1])
    assert [h.instance_id for h in provider.target_health("search-prod")] == ids[1:]


def test_missing_target_groups(provider: AwsProvider) -> None:
    for call in (
        lambda: provider.describe_target_group("nope"),
        lambda: provider.register_instances("nope", ["i-0123456789abcdef0"]),
        lambda: provider.deregister_instances("nope", ["i-0123456789abcdef0"]),
        lambda: provider.target_health("nope"),
    ):
        with pytest.raises(NotFound) as caught:
            call()
        assert caught.value.field == "target_group"
    provider.delete_target_group("nope")  # idempotent
    assert provider.list_target_groups() == []


def test_delete_target_group(provider: AwsProvider, subnet: dict[str, str]) -> None:
    provider.ensure_target_group(tg_spec(subnet["vpc"]))
    provider.delete_target_group("search-prod")
    with pytest.raises(NotFound):
        provider.describe_target_group("search-prod")
