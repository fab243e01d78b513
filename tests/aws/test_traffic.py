"""Traffic by weight on ELBv2 (moto's server): a target group per deployment group, weighted in
the listener's forward action; a shift is one ModifyListener, counted at botocore's boundary.

moto stores forward actions with weights and answers them back, but routes no requests and
reports every registered target ``healthy`` at once: so these tests check what Klink sends
(the ModifyListener requests, recorded through botocore's events) and what moto then
describes, never a share of requests.
"""

from __future__ import annotations

from typing import Any

import pytest

from klink.errors import Conflict, InvalidInput, NotFound
from klink.providers.aws import AwsProvider
from klink.providers.aws.convert import member_target_group
from klink.providers.base import GroupSpec, LaunchTemplateSpec, TargetGroupSpec
from tests.aws.faults import CallRecorder

pytestmark = pytest.mark.slow

HOME = "search-prod"
OLD, NEW = "search-prod-v001", "search-prod-v002"


def balancer(provider: AwsProvider, ec2: Any, elbv2: Any, vpc: str, ports: tuple[int, ...]) -> str:
    """The home target group behind a load balancer with a plain forward listener per port."""
    home = provider.ensure_target_group(
        TargetGroupSpec(name=HOME, port=8080, vpc_id=vpc, deregistration_delay_seconds=7)
    )
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    lb = elbv2.create_load_balancer(Name=HOME, Subnets=[s["SubnetId"] for s in subnets[:2]])
    lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
    for port in ports:
        elbv2.create_listener(
            LoadBalancerArn=lb_arn,
            Protocol="HTTP",
            Port=port,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": home.id}],
        )
    return str(lb_arn)


def group(
    provider: AwsProvider, image: str, subnet: dict[str, str], name: str, size: int, **extra: Any
) -> None:
    template = provider.create_launch_template(
        LaunchTemplateSpec(name=name, image_id=image, instance_type="t3.micro", user_data="")
    )
    provider.create_group(
        GroupSpec(
            name=name,
            launch_template=template.name,
            min_size=size,
            max_size=max(size, 1),
            desired_capacity=size,
            subnets=(subnet["id"],),
            **extra,
        )
    )


def forwards(elbv2: Any, lb_arn: str) -> list[dict[str, int]]:
    """Each listener's forward action as moto describes it: target group name → weight."""
    out = []
    listeners = elbv2.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"]
    for listener in sorted(listeners, key=lambda x: x["Port"]):
        [action] = listener["DefaultActions"]
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
        if groups is None:
            groups = [{"TargetGroupArn": action["TargetGroupArn"], "Weight": 100}]
        out.append({g["TargetGroupArn"].split("/")[1]: g["Weight"] for g in groups})
    return out


def sent_weights(recorder: CallRecorder) -> list[dict[str, int]]:
    """The weights of every ModifyListener request Klink sent, by target group name."""
    out = []
    for operation, params in recorder.requests:
        if operation == "ModifyListener":
            [action] = params["DefaultActions"]
            groups = action["ForwardConfig"]["TargetGroups"]
            out.append({g["TargetGroupArn"].split("/")[1]: g["Weight"] for g in groups})
    return out


@pytest.mark.parametrize("size", [1, 4, 16])
def test_attach_then_each_shift_and_undo_is_one_modify_listener(
    provider: AwsProvider,
    ec2: Any,
    elbv2: Any,
    asg: Any,
    subnet: dict[str, str],
    image: str,
    size: int,
) -> None:
    recorder = CallRecorder().attach(provider.session)  # before any client is made
    lb_arn = balancer(provider, ec2, elbv2, subnet["vpc"], (80,))
    # The old group serves the pre-weights way: registered straight with the home target group.
    group(provider, image, subnet, OLD, size, target_groups=(HOME,))
    group(provider, image, subnet, NEW, size)
    before = provider.traffic(HOME)
    assert before.weights() == {HOME: 100}
    assert before.get(HOME).direct  # type: ignore[union-attr]
    assert before.get(HOME).registered == size  # type: ignore[union-attr]

    provider.attach_traffic(HOME, NEW)
    provider.attach_traffic(HOME, NEW)  # idempotent
    member = member_target_group(HOME, NEW)
    assert len(member) <= 32
    assert forwards(elbv2, lb_arn) == [{HOME: 100, member: 0}]
    described = provider.describe_target_group(member)
    assert (described.port, described.health_check_path) == (8080, "/healthcheck")
    assert described.deregistration_delay_seconds == 7
    assert described.tags["klink:traffic-of"] == HOME
    assert described.tags["klink:group"] == NEW
    # The Auto Scaling group is attached to its own target group, which describe_group hides.
    raw = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[NEW])["AutoScalingGroups"][0]
    assert [arn.split("/")[1] for arn in raw["TargetGroupARNs"]] == [member]
    assert provider.describe_group(NEW).target_groups == ()
    state = provider.traffic(HOME)
    assert state.weights() == {HOME: 100, NEW: 0}
    warm = state.get(NEW)
    assert warm is not None
    assert (warm.registered, warm.target) == (size, member)
    assert warm.healthy == size  # moto: healthy at once; ELBv2 checks weight-0 members too

    recorder.reset()
    provider.set_traffic(HOME, {NEW: 100, HOME: 0})
    assert recorder.calls["ModifyListener"] == 1  # the shift, whatever the size
    assert sent_weights(recorder) == [{HOME: 0, member: 100}]
    assert forwards(elbv2, lb_arn) == [{HOME: 0, member: 100}]
    provider.set_traffic(HOME, {NEW: 100})  # already so: nothing sent
    assert recorder.calls["ModifyListener"] == 1
    provider.set_traffic(HOME, {HOME: 100, NEW: 0})  # the undo while warm: one call too
    assert recorder.calls["ModifyListener"] == 2
    assert provider.traffic(HOME).weights() == {HOME: 100, NEW: 0}
    assert set(recorder.operations()) <= {
        "DescribeTargetGroups",
        "DescribeListeners",
        "DescribeTags",
        "ModifyListener",
        "DescribeTargetHealth",
    }


def test_detach_refuses_a_member_with_weight_then_removes_it_whole(
    provider: AwsProvider,
    ec2: Any,
    elbv2: Any,
    asg: Any,
    subnet: dict[str, str],
    image: str,
) -> None:
    recorder = CallRecorder().attach(provider.session)
    lb_arn = balancer(provider, ec2, elbv2, subnet["vpc"], (80, 8080))
    group(provider, image, subnet, OLD, 2)
    group(provider, image, subnet, NEW, 2)
    # Nothing registered straight with home: it takes weight 0 when weights take over.
    provider.attach_traffic(HOME, OLD)
    assert provider.traffic(HOME).weights() == {HOME: 0, OLD: 0}
    provider.attach_traffic(HOME, NEW)
    recorder.reset()
    provider.set_traffic(HOME, {OLD: 100})
    assert recorder.calls["ModifyListener"] == 2  # one per listener forwarding to home
    old_tg, new_tg = member_target_group(HOME, OLD), member_target_group(HOME, NEW)
    assert forwards(elbv2, lb_arn) == [{HOME: 0, old_tg: 100, new_tg: 0}] * 2
    provider.set_traffic(HOME, {OLD: 0, NEW: 100})
    with pytest.raises(Conflict) as caught:
        provider.detach_traffic(HOME, NEW)
    assert caught.value.field == "weights"
    with pytest.raises(InvalidInput):
        provider.detach_traffic(HOME, HOME)

    provider.detach_traffic(HOME, OLD)
    provider.detach_traffic(HOME, OLD)  # idempotent
    assert forwards(elbv2, lb_arn) == [{HOME: 0, new_tg: 100}] * 2
    with pytest.raises(NotFound):
        provider.describe_target_group(old_tg)
    raw = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[OLD])["AutoScalingGroups"][0]
    assert raw["TargetGroupARNs"] == []
    assert provider.traffic(HOME).weights() == {HOME: 0, NEW: 100}


def test_refused_weights_send_nothing(
    provider: AwsProvider,
    ec2: Any,
    elbv2: Any,
    subnet: dict[str, str],
    image: str,
) -> None:
    recorder = CallRecorder().attach(provider.session)
    balancer(provider, ec2, elbv2, subnet["vpc"], (80,))
    group(provider, image, subnet, NEW, 1)
    provider.attach_traffic(HOME, NEW)
    recorder.reset()
    for weights in ({NEW: 101}, {NEW: -5}, {"search-prod-v404": 10}, {NEW: 0}, {NEW: 2.5}):
        with pytest.raises(InvalidInput) as caught:
            provider.set_traffic(HOME, weights)  # type: ignore[dict-item]
        assert caught.value.field == "weights"
    assert recorder.calls["ModifyListener"] == 0
    for call, field in (
        (lambda: provider.attach_traffic("nope", NEW), "target_group"),
        (lambda: provider.attach_traffic(HOME, "search-prod-v404"), "group"),
        (lambda: provider.traffic("nope"), "target_group"),
    ):
        with pytest.raises(NotFound) as missing:
            call()
        assert missing.value.field == field


def test_a_forward_action_holds_home_and_four_members(
    provider: AwsProvider,
    ec2: Any,
    elbv2: Any,
    subnet: dict[str, str],
    image: str,
) -> None:
    balancer(provider, ec2, elbv2, subnet["vpc"], (80,))
    names = [f"search-prod-v{n:03d}" for n in range(5)]
    for name in names:
        group(provider, image, subnet, name, 0)
    for name in names[:4]:
        provider.attach_traffic(HOME, name)
    with pytest.raises(Conflict) as caught:
        provider.attach_traffic(HOME, names[4])
    assert caught.value.field == "group"
    # Refused before anything was made: no stray target group for the fifth.
    with pytest.raises(NotFound):
        provider.describe_target_group(member_target_group(HOME, names[4]))
    provider.attach_traffic(HOME, names[0])  # an attached member attaches again
    provider.detach_traffic(HOME, names[0])
    provider.attach_traffic(HOME, names[4])
    assert set(provider.traffic(HOME).weights()) == {HOME, *names[1:]}


def test_members_follow_a_changed_health_check_of_home(
    provider: AwsProvider,
    ec2: Any,
    elbv2: Any,
    asg: Any,
    subnet: dict[str, str],
    image: str,
) -> None:
    lb_arn = balancer(provider, ec2, elbv2, subnet["vpc"], (80,))
    group(provider, image, subnet, OLD, 1)
    group(provider, image, subnet, NEW, 1)
    provider.attach_traffic(HOME, OLD)
    provider.attach_traffic(HOME, NEW)
    provider.set_traffic(HOME, {OLD: 100})
    # Infrastructure changes home's health check and deregistration delay in place.
    provider.ensure_target_group(
        TargetGroupSpec(
            name=HOME,
            port=8080,
            vpc_id=subnet["vpc"],
            health_check_path="/ready",
            health_check_interval_seconds=11,
            deregistration_delay_seconds=9,
        )
    )
    for name in (OLD, NEW):
        member = provider.describe_target_group(member_target_group(HOME, name))
        assert (member.health_check_path, member.health_check_interval_seconds) == ("/ready", 11)
        assert member.deregistration_delay_seconds == 9
    # Nothing else moved: the weights, the members, their groups' attachments.
    assert provider.traffic(HOME).weights() == {HOME: 0, OLD: 100, NEW: 0}
    assert forwards(elbv2, lb_arn) == [
        {HOME: 0, member_target_group(HOME, OLD): 100, member_target_group(HOME, NEW): 0}
    ]
    raw = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[OLD])["AutoScalingGroups"][0]
    assert [a.split("/")[1] for a in raw["TargetGroupARNs"]] == [member_target_group(HOME, OLD)]


def test_attach_needs_a_listener(provider: AwsProvider, subnet: dict[str, str], image: str) -> None:
    provider.ensure_target_group(TargetGroupSpec(name=HOME, port=8080, vpc_id=subnet["vpc"]))
    group(provider, image, subnet, NEW, 1)
    with pytest.raises(Conflict) as caught:
        provider.attach_traffic(HOME, NEW)
    assert caught.value.field == "target_group"


def test_member_names_fit_and_differ() -> None:
    long_group = "a" * 32 + "-" + "b" * 32 + "-v123"
    names = {
        member_target_group(HOME, NEW),
        member_target_group("search-internal", NEW),
        member_target_group(HOME, OLD),
        member_target_group(HOME, long_group),
    }
    assert len(names) == 4
    assert all(len(n) <= 32 and n.startswith("kt-") and not n.endswith("-") for n in names)
    assert member_target_group(HOME, long_group).endswith("-v123")
