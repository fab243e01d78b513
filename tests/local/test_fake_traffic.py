"""The in-memory FakeProvider keeps the traffic contract that the local and AWS providers keep
(engine tests rely on it): members join at weight 0, a shift is one recorded call, the direct
member's rules, refusals with the same fields, launches joining, state surviving a reload."""

from __future__ import annotations

from pathlib import Path

import pytest

from klink.errors import Conflict, InvalidInput, NotFound
from klink.providers.base import GroupSpec, LaunchTemplateSpec, TargetGroupSpec
from klink.testing.fake_provider import FakeProvider

HOME, OLD, NEW = "hello-dev", "hello-dev-v001", "hello-dev-v002"


def cloud(path: Path | None = None) -> FakeProvider:
    fake = FakeProvider(state_path=path)
    fake.add_image("img-1", "hello", "1.0")
    fake.add_image("img-2", "hello", "2.0")
    fake.ensure_target_group(TargetGroupSpec(name=HOME, port=8080, frontend_port=18080))
    for name, image in ((OLD, "img-1"), (NEW, "img-2")):
        fake.create_launch_template(
            LaunchTemplateSpec(name=name, image_id=image, instance_type="x", user_data="")
        )
        fake.create_group(
            GroupSpec(name=name, launch_template=name, min_size=0, max_size=8, desired_capacity=0)
        )
        fake.resize_group(name, min_size=2, max_size=8, desired_capacity=2)
        fake.describe_group(name)  # one poll: InService
    return fake


def test_attach_shift_undo_detach(tmp_path: Path) -> None:
    fake = cloud(tmp_path / "state.json")
    assert fake.traffic(HOME).weights() == {HOME: 100}  # all traffic direct before weights
    fake.attach_traffic(HOME, OLD)
    fake.attach_traffic(HOME, NEW)
    state = fake.traffic(HOME)
    assert state.weights() == {OLD: 0, NEW: 0}  # nothing direct: the direct member took 0
    assert [(g.registered, g.healthy) for g in state.groups] == [(2, 2), (2, 2)]
    before = fake.count("set_traffic")
    fake.set_traffic(HOME, {OLD: 100})
    fake.set_traffic(HOME, {OLD: 100})  # already so: no second shift
    fake.set_traffic(HOME, {NEW: 100, OLD: 0})
    assert fake.count("set_traffic") == before + 2
    assert fake.traffic(HOME).share(NEW) == 1.0
    with pytest.raises(Conflict) as caught:
        fake.detach_traffic(HOME, NEW)
    assert caught.value.field == "weights"
    # The state survives a reload (an engine process killed and restarted).
    again = FakeProvider(state_path=tmp_path / "state.json")
    assert again.traffic(HOME).weights() == {OLD: 0, NEW: 100}
    again.detach_traffic(HOME, OLD)
    again.detach_traffic(HOME, OLD)
    assert again.traffic(HOME).weights() == {NEW: 100}
    with pytest.raises(InvalidInput):
        again.set_traffic(HOME, {OLD: 100})


def test_refusals_and_the_direct_member() -> None:
    fake = cloud()
    fake.register_instances(HOME, [i.id for i in fake.describe_group(OLD).instances])
    fake.attach_traffic(HOME, NEW)
    direct = fake.traffic(HOME).get(HOME)
    assert direct is not None
    assert (direct.direct, direct.weight, direct.registered) == (True, 100, 2)
    for weights in ({NEW: 101}, {NEW: -1}, {"nope": 1}, {}, {NEW: 0, HOME: 0}, {NEW: True}):
        with pytest.raises(InvalidInput) as caught:
            fake.set_traffic(HOME, weights)  # type: ignore[arg-type]
        assert caught.value.field == "weights"
    with pytest.raises(InvalidInput):
        fake.detach_traffic(HOME, HOME)
    for call, field in (
        (lambda: fake.attach_traffic("nope", NEW), "target_group"),
        (lambda: fake.attach_traffic(HOME, "hello-dev-v404"), "group"),
        (lambda: fake.traffic("nope"), "target_group"),
    ):
        with pytest.raises(NotFound) as missing:
            call()
        assert missing.value.field == field
    fake.set_traffic(HOME, {NEW: 100, HOME: 0})
    assert fake.traffic(HOME).weights() == {HOME: 0, NEW: 100}


def test_launches_join_unless_add_to_load_balancer_is_suspended() -> None:
    fake = cloud()
    fake.attach_traffic(HOME, NEW)
    fake.resize_group(NEW, min_size=3, max_size=8, desired_capacity=3)
    fake.describe_group(NEW)
    assert fake.traffic(HOME).get(NEW).registered == 3  # type: ignore[union-attr]
    fake.suspend_processes(NEW, ["AddToLoadBalancer"])
    fake.resize_group(NEW, min_size=4, max_size=8, desired_capacity=4)
    assert fake.traffic(HOME).get(NEW).registered == 3  # type: ignore[union-attr]
    fake.attach_traffic(HOME, NEW)  # attaching again registers what is missing
    assert fake.traffic(HOME).get(NEW).registered == 4  # type: ignore[union-attr]
    fake.make_unhealthy("img-2")
    assert fake.traffic(HOME).get(NEW).healthy == 0  # type: ignore[union-attr]
    fake.delete_group(NEW)
    leaving = fake.traffic(HOME).get(NEW)
    assert leaving is not None
    assert (leaving.registered, leaving.draining) == (0, 4)
