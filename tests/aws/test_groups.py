"""Groups: create with tags/targets/suspended processes, describe with instances, list by the
exact-name rule (paginated), resize, suspend/resume, delete, and the previous state recovered
from the cloud alone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from klink.errors import InvalidInput, NotFound
from klink.names import group_pattern, launch_template_name, next_group_name
from klink.providers.aws import AwsProvider
from klink.providers.base import (
    IN_SERVICE,
    TAG_APP,
    TAG_CONFIG_COMMIT,
    TAG_DEPLOYED_AT,
    TAG_DEPLOYED_BY,
    TAG_DEPLOYMENT,
    TAG_ENV,
    TAG_VERSION,
    GroupSpec,
    LaunchTemplateSpec,
    TargetGroupSpec,
)
from tests.aws.faults import CallRecorder

pytestmark = pytest.mark.slow

TAGS = {
    TAG_APP: "search",
    TAG_ENV: "prod",
    TAG_VERSION: "3.14",
    TAG_CONFIG_COMMIT: "0123abc",
    TAG_DEPLOYMENT: "42",
    TAG_DEPLOYED_BY: "alice",
    TAG_DEPLOYED_AT: "2026-01-02T03:04:05Z",
}


@pytest.fixture
def template(provider: AwsProvider, image: str) -> str:
    spec = LaunchTemplateSpec(
        name="search-prod-v001-20260102030405",
        image_id=image,
        instance_type="t3.micro",
        user_data="#cloud-config\nruncmd: [[echo, hello]]\n",
    )
    return provider.create_launch_template(spec).name


def group_spec(
    name: str, template: str, subnet: dict[str, str], desired: int = 0, **extra: Any
) -> GroupSpec:
    return GroupSpec(
        name=name,
        launch_template=template,
        min_size=desired,
        max_size=max(desired, 4),
        desired_capacity=desired,
        subnets=(subnet["id"],),
        **extra,
    )


def test_create_describes_tags_targets_and_instances(
    provider: AwsProvider, template: str, subnet: dict[str, str], image: str, ec2: Any
) -> None:
    provider.ensure_target_group(
        TargetGroupSpec(name="search-prod", port=8080, vpc_id=subnet["vpc"])
    )
    spec = group_spec(
        "search-prod-v001",
        template,
        subnet,
        desired=2,
        default_cooldown=15,
        health_check_type="ELB",
        health_check_grace_period=120,
        termination_policies=("OldestInstance",),
        target_groups=("search-prod",),
        tags=TAGS,
    )
    group = provider.create_group(spec)
    assert group == provider.describe_group("search-prod-v001")
    assert group.launch_template == template
    assert (group.min_size, group.max_size, group.desired_capacity) == (2, 4, 2)
    assert (group.default_cooldown, group.health_check_type) == (15, "ELB")
    assert group.health_check_grace_period == 120
    assert group.termination_policies == ("OldestInstance",)
    assert group.subnets == (subnet["id"],)
    assert group.target_groups == ("search-prod",)
    assert group.tags == {**TAGS, "Name": "search-prod-v001"}
    assert group.created_at is not None
    assert group.suspended_processes == frozenset()
    assert len(group.instances) == 2
    for instance in group.instances:
        assert instance.id.startswith("i-")
        assert instance.lifecycle_state == IN_SERVICE
        assert instance.health == "Healthy"
        assert instance.private_ip  # reported from EC2; never connected to
        assert instance.launched_at is not None
        assert instance.image_id == image
        assert instance.group == "search-prod-v001"
    # The group's tags reach its instances.
    reservations = ec2.describe_instances(InstanceIds=[group.instances[0].id])["Reservations"]
    instance_tags = {t["Key"]: t["Value"] for t in reservations[0]["Instances"][0]["Tags"]}
    assert instance_tags[TAG_CONFIG_COMMIT] == "0123abc"
    assert instance_tags["Name"] == "search-prod-v001"


def test_create_is_idempotent_on_the_name(
    provider: AwsProvider, template: str, subnet: dict[str, str]
) -> None:
    first = provider.create_group(group_spec("search-prod-v001", template, subnet, desired=1))
    again = provider.create_group(group_spec("search-prod-v001", template, subnet, desired=3))
    assert again.desired_capacity == 1
    assert [i.id for i in again.instances] == [i.id for i in first.instances]


def test_processes_suspended_at_creation_are_suspended_before_capacity_is_set(
    provider: AwsProvider, template: str, subnet: dict[str, str], asg: Any
) -> None:
    spec = group_spec(
        "search-prod-v002",
        template,
        subnet,
        desired=2,
        suspended_processes=("AddToLoadBalancer", "Terminate"),
    )
    recorder = CallRecorder().attach(provider.session)
    group = provider.create_group(spec)
    writes = [
        (name, params) for name, params in recorder.requests if not name.startswith("Describe")
    ]
    assert [name for name, _ in writes] == [
        "CreateAutoScalingGroup",
        "SuspendProcesses",
        "UpdateAutoScalingGroup",
    ]
    assert writes[0][1]["DesiredCapacity"] == 0  # nothing launches before the suspension
    assert group.suspended_processes == {"AddToLoadBalancer", "Terminate"}
    assert group.desired_capacity == 2
    assert len(group.instances) == 2


def test_bad_group_input_names_the_field(
    provider: AwsProvider, template: str, subnet: dict[str, str]
) -> None:
    with pytest.raises(InvalidInput) as no_subnet:
        provider.create_group(GroupSpec("search-prod-v001", template, 0, 1, 0))
    assert no_subnet.value.field == "subnets"
    with pytest.raises(InvalidInput) as bad_process:
        provider.create_group(
            group_spec("search-prod-v001", template, subnet, suspended_processes=("Sleep",))
        )
    assert bad_process.value.field == "processes"
    assert not provider.group_exists("search-prod-v001")  # nothing half-made
    with pytest.raises(NotFound) as no_target_group:
        provider.create_group(
            group_spec("search-prod-v001", template, subnet, target_groups=("missing",))
        )
    assert no_target_group.value.field == "target_group"
    assert not provider.group_exists("search-prod-v001")


def test_list_groups_uses_the_exact_name_rule(
    provider: AwsProvider, template: str, subnet: dict[str, str]
) -> None:
    for name in ("search-pro-v001", "search-prod-v001", "search-prod-v002", "search-prod-v02"):
        provider.create_group(group_spec(name, template, subnet))
    provider.create_group(group_spec("search-prod-v003-canary", template, subnet))
    pro = provider.list_groups(group_pattern("search", "pro").pattern)
    assert [g.name for g in pro] == ["search-pro-v001"]  # `pro` never finds `prod`
    prod = provider.list_groups(group_pattern("search", "prod").pattern)
    assert [g.name for g in prod] == ["search-prod-v002", "search-prod-v001"]  # newest first
    assert len(provider.list_groups()) == 5
    assert provider.list_groups("search-pr") == []  # a pattern matches whole names only
    with pytest.raises(InvalidInput) as caught:
        provider.list_groups("search-(")
    assert caught.value.field == "pattern"


def test_list_groups_pages_through_more_than_a_hundred_groups(
    provider: AwsProvider, template: str, subnet: dict[str, str], asg: Any
) -> None:
    for n in range(105):
        asg.create_auto_scaling_group(
            AutoScalingGroupName=f"search-prod-v{n:03d}",
            LaunchTemplate={"LaunchTemplateName": template, "Version": "$Default"},
            MinSize=0,
            MaxSize=1,
            DesiredCapacity=0,
            VPCZoneIdentifier=subnet["id"],
        )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="search-prodx-v000",
        LaunchTemplate={"LaunchTemplateName": template, "Version": "$Default"},
        MinSize=0,
        MaxSize=1,
        VPCZoneIdentifier=subnet["id"],
    )
    recorder = CallRecorder().attach(provider.session)
    groups = provider.list_groups(group_pattern("search", "prod").pattern)
    assert sorted(g.name for g in groups) == [f"search-prod-v{n:03d}" for n in range(105)]
    assert recorder.calls["DescribeAutoScalingGroups"] >= 2  # more than one page


def test_next_group_name_from_the_cloud_wraps_999_to_000_and_skips_taken_names(
    provider: AwsProvider, template: str, subnet: dict[str, str]
) -> None:
    pattern = group_pattern("search", "prod").pattern

    def next_name() -> str:
        groups = provider.list_groups(pattern)
        newest = groups[0].name if groups else None
        return next_group_name("search", "prod", newest, [g.name for g in groups])

    assert next_name() == "search-prod-v000"
    provider.create_group(group_spec("search-prod-v999", template, subnet))
    assert next_name() == "search-prod-v000"  # wraps
    provider.create_group(group_spec("search-prod-v000", template, subnet))
    provider.create_group(group_spec("search-prod-v001", template, subnet))
    provider.create_group(group_spec("search-prod-v998", template, subnet))  # newest now
    assert next_name() == "search-prod-v002"  # 999, 000 and 001 are still taken


def test_resize_suspend_resume_tag(
    provider: AwsProvider, template: str, subnet: dict[str, str]
) -> None:
    provider.create_group(group_spec("search-prod-v001", template, subnet, desired=1))
    provider.resize_group("search-prod-v001", min_size=0, max_size=5, desired_capacity=3)
    group = provider.describe_group("search-prod-v001")
    assert (group.min_size, group.max_size, group.desired_capacity) == (0, 5, 3)
    assert len(group.instances) == 3
    provider.suspend_processes("search-prod-v001", ["Launch", "AZRebalance"])
    assert provider.describe_group("search-prod-v001").suspended_processes == {
        "Launch",
        "AZRebalance",
    }
    provider.resume_processes("search-prod-v001", ["Launch"])
    assert provider.describe_group("search-prod-v001").suspended_processes == {"AZRebalance"}
    provider.tag_group("search-prod-v001", {TAG_DEPLOYMENT: "43"})
    assert provider.describe_group("search-prod-v001").tags[TAG_DEPLOYMENT] == "43"
    with pytest.raises(InvalidInput) as caught:
        provider.resize_group("search-prod-v001", min_size=2, max_size=1, desired_capacity=1)
    assert caught.value.field == "desired_capacity"
    with pytest.raises(InvalidInput):
        provider.suspend_processes("search-prod-v001", ["Nap"])
    with pytest.raises(NotFound):
        provider.tag_group("search-prod-v404", {"a": "b"})


def test_delete_group_and_is_it_gone(
    provider: AwsProvider, template: str, subnet: dict[str, str]
) -> None:
    provider.create_group(group_spec("search-prod-v001", template, subnet, desired=2))
    assert provider.group_exists("search-prod-v001")
    provider.delete_group("search-prod-v001", force=True)
    assert not provider.group_exists("search-prod-v001")
    with pytest.raises(NotFound) as caught:
        provider.describe_group("search-prod-v001")
    assert caught.value.field == "group"
    provider.delete_group("search-prod-v001")  # idempotent
    assert not provider.group_exists("search-prod-v404")


def test_previous_state_is_recovered_from_the_cloud_alone(
    make_provider: Any, image: str, subnet: dict[str, str]
) -> None:
    deployer = make_provider()
    deployer.ensure_target_group(
        TargetGroupSpec(name="search-prod", port=8080, vpc_id=subnet["vpc"])
    )
    for n, commit in ((1, "aaaa111"), (2, "bbbb222")):
        group = f"search-prod-v{n:03d}"
        template = launch_template_name(group, datetime(2026, 1, n, tzinfo=UTC))
        deployer.create_launch_template(
            LaunchTemplateSpec(
                name=template,
                image_id=image,
                instance_type="t3.small",
                user_data=f"#cloud-config\n# commit {commit}\n",
            )
        )
        deployer.create_group(
            group_spec(
                group,
                template,
                subnet,
                desired=n,
                target_groups=("search-prod",),
                tags={**TAGS, TAG_CONFIG_COMMIT: commit},
            )
        )
    # A fresh provider (say, after a restart) knows nothing but what the cloud says.
    fresh = make_provider()
    current = fresh.list_groups(group_pattern("search", "prod").pattern)[0]
    template = fresh.describe_launch_template(current.launch_template)
    assert current.name == "search-prod-v002"
    assert current.tags[TAG_CONFIG_COMMIT] == "bbbb222"
    assert (current.min_size, current.max_size, current.desired_capacity) == (2, 4, 2)
    assert current.target_groups == ("search-prod",)
    assert template.name == "search-prod-v002-20260102000000"
    assert template.image_id == image
    assert template.user_data == "#cloud-config\n# commit bbbb222\n"
    assert fresh.describe_image(template.image_id).version == "3.14"
