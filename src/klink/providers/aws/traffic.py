"""Traffic by weight on ELBv2: a target group per deployment group, weighted in the listener.

The balancer is the app's target group (*home*, defined by infrastructure) and the listeners
whose default ``forward`` action sends to it. Attaching deployment group G creates G's own
target group (``convert.member_target_group``: home's port, protocol, health check and
deregistration delay; tagged ``klink:traffic-of`` = home and ``klink:group`` = G), attaches
the Auto Scaling group to it (so that the group's later launches register themselves, unless
``AddToLoadBalancer`` is suspended), registers G's instances now ``InService``, and adds it
to each listener's forward action at weight 0: ELBv2 health-checks targets only of target
groups that a listener uses, so this is what keeps a weight-0 member warm.

The forward action is ``ForwardConfig.TargetGroups`` with weights: home itself stays in it
(the *direct* member, weight 100 if it had targets when weights took over, 0 otherwise), so
listeners are found by home's ARN. A shift is one ``ModifyListener`` per listener (reads
before it: the home target group, its balancer's listeners and the members' tags; nothing is
cached, so a recreated target group is never addressed by a stale ARN). Other actions of the
listener (authentication, order) and its stickiness setting are kept as they are. ELBv2
allows 5 target groups per forward action: home and up to 4 members. Members stay copies of
home: when home's health check or deregistration delay changes in place (infrastructure),
``follow_home`` gives them the same. How a forward action is read (home, members) is shared
with infrastructure's listeners (``forwards.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from klink.errors import Conflict, InvalidInput, NotFound
from klink.providers.aws.convert import forward_of, member_target_group, tag_list, tags_of
from klink.providers.aws.forwards import (
    TAG_GROUP,
    TAG_TRAFFIC_OF,
    listeners_fronting,
    name_of,
    target_group_tags,
    with_forward,
)
from klink.providers.aws.groups import Groups
from klink.providers.aws.session import AwsSession
from klink.providers.aws.targets import DELAY_ATTRIBUTE, Targets
from klink.providers.base import IN_SERVICE, TAG_MANAGED_BY
from klink.providers.traffic import GroupTraffic, TrafficState, merge_weights

MAX_TARGET_GROUPS = 5  # per forward action (ELBv2's limit)

_Current = tuple[dict[str, Any], list[dict[str, Any]], dict[str, int], dict[str, str]]

_HEALTH_FIELDS = (
    "HealthCheckProtocol",
    "HealthCheckPort",
    "HealthCheckPath",
    "HealthCheckIntervalSeconds",
    "HealthCheckTimeoutSeconds",
    "HealthyThresholdCount",
    "UnhealthyThresholdCount",
    "Matcher",
)


class Traffic:
    def __init__(self, session: AwsSession, targets: Targets, groups: Groups) -> None:
        self.session = session
        self.targets = targets
        self.groups = groups

    @property
    def _elb(self) -> Any:
        return self.session.client("elbv2")

    # Reading -------------------------------------------------------------------------------
    def _home(self, target_group: str) -> dict[str, Any]:
        raw = self.targets._raw(target_group)
        if raw is None:
            raise NotFound(f"target group {target_group} not found", field="target_group")
        return raw

    def _listeners(self, home: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Listeners of home's balancer whose default forward action includes home."""
        return listeners_fronting(self.session, home)

    def _names(self, home: Mapping[str, Any], arns: Sequence[str]) -> dict[str, str]:
        """Member ARN → member name: home's own name, or the ``klink:group`` tag."""
        home_name = str(home["TargetGroupName"])
        names = {home["TargetGroupArn"]: home_name}
        others = [a for a in arns if a not in names]
        tags = target_group_tags(self.session, others)
        for arn in others:
            own = tags.get(arn, {})
            # A target group that is no member of home's (put there by hand) keeps its name.
            member = own.get(TAG_TRAFFIC_OF) == home_name and own.get(TAG_GROUP)
            names[arn] = own[TAG_GROUP] if member else name_of(arn)
        return names

    def _current(self, target_group: str) -> _Current:
        """(home, listeners, ARN → weight from the first listener, ARN → member name)."""
        home = self._home(target_group)
        listeners = self._listeners(home)
        forward = (forward_of(listeners[0]) or {}) if listeners else {}
        return home, listeners, forward, self._names(home, list(forward))

    def _modify(self, listener: Mapping[str, Any], weights: Mapping[str, int]) -> None:
        elb, arn = self._elb, listener["ListenerArn"]
        actions = with_forward(listener, weights)
        self.session.call(
            f"set weights on listener {arn}",
            lambda: elb.modify_listener(ListenerArn=arn, DefaultActions=actions),
        )

    def traffic(self, target_group: str) -> TrafficState:
        home, listeners, forward, names = self._current(target_group)
        home_arn = home["TargetGroupArn"]
        if not listeners:
            forward = {home_arn: 100}
        elb, out = self._elb, []
        for arn, weight in forward.items():
            answer = self.session.call(
                f"describe target health of {names[arn]}",
                lambda a=arn: elb.describe_target_health(TargetGroupArn=a),  # type: ignore[misc]
            )
            states = [
                d.get("TargetHealth", {}).get("State") for d in answer["TargetHealthDescriptions"]
            ]
            draining = sum(1 for s in states if s == "draining")
            out.append(
                GroupTraffic(
                    name=names[arn],
                    weight=weight,
                    registered=len(states) - draining,
                    healthy=sum(1 for s in states if s == "healthy"),
                    draining=draining,
                    direct=arn == home_arn,
                    target=arn.split("/")[1],
                )
            )
        return TrafficState(target_group, tuple(sorted(out, key=lambda g: g.name)))

    # Writing -------------------------------------------------------------------------------
    def _member(self, home: Mapping[str, Any], group: str, raw: Mapping[str, Any] | None) -> str:
        """``group``'s own target group (``raw``, as described), or a new copy of home's; its
        ARN."""
        target_group = str(home["TargetGroupName"])
        name = member_target_group(target_group, group)
        elb = self._elb
        if raw is not None:
            tags = self._tags(str(raw["TargetGroupArn"]))
            if (tags.get(TAG_TRAFFIC_OF), tags.get(TAG_GROUP)) != (target_group, group):
                raise Conflict(
                    f"target group {name} exists and is not {group}'s behind {target_group}",
                    field="group",
                )
            return str(raw["TargetGroupArn"])
        kwargs: dict[str, Any] = {
            "Name": name,
            "Protocol": home.get("Protocol", "HTTP"),
            "Port": home["Port"],
            "VpcId": home["VpcId"],
            "TargetType": "instance",
            "Tags": tag_list(
                {TAG_TRAFFIC_OF: target_group, TAG_GROUP: group, TAG_MANAGED_BY: "klink"}
            ),
            **{k: home[k] for k in _HEALTH_FIELDS if k in home},
        }
        created = self.session.call(
            f"create target group {name}", lambda: elb.create_target_group(**kwargs)
        )
        arn = str(created["TargetGroups"][0]["TargetGroupArn"])
        attrs = self.session.call(
            f"describe attributes of {target_group}",
            lambda: elb.describe_target_group_attributes(TargetGroupArn=home["TargetGroupArn"]),
        )
        delay = [a for a in attrs["Attributes"] if a["Key"] == DELAY_ATTRIBUTE]
        if delay:
            self.session.call(
                f"set deregistration delay of {name}",
                lambda: elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=delay),
            )
        return arn

    def _tags(self, arn: str) -> dict[str, str]:
        elb = self._elb
        answer = self.session.call(
            f"describe tags of {arn}", lambda: elb.describe_tags(ResourceArns=[arn])
        )
        descriptions = answer["TagDescriptions"]
        return tags_of(descriptions[0].get("Tags")) if descriptions else {}

    def attach(self, target_group: str, group: str) -> None:
        if group == target_group:
            raise InvalidInput(
                f"a group cannot be named like its target group {target_group}", field="group"
            )
        home = self._home(target_group)
        asg_raw = self.groups._raw(group)
        if asg_raw is None:
            raise NotFound(f"group {group} not found", field="group")
        listeners = self._listeners(home)
        if not listeners:
            raise Conflict(
                f"no listener forwards to {target_group}: weights need one", field="target_group"
            )
        member = self.targets._raw(member_target_group(target_group, group))
        for listener in listeners:
            forward = forward_of(listener) or {}
            joined = member is not None and member["TargetGroupArn"] in forward
            if not joined and len(forward) >= MAX_TARGET_GROUPS:
                raise Conflict(
                    f"{target_group}'s listener already forwards to {len(forward)} target "
                    f"groups, ELBv2's limit: detach a member first",
                    field="group",
                )
        arn = self._member(home, group, member)
        asg = self.session.client("autoscaling")
        if arn not in asg_raw.get("TargetGroupARNs", ()):
            self.session.call(
                f"attach {group} to its target group",
                lambda: asg.attach_load_balancer_target_groups(
                    AutoScalingGroupName=group, TargetGroupARNs=[arn]
                ),
            )
        ready = [
            i["InstanceId"]
            for i in asg_raw.get("Instances", ())
            if i.get("LifecycleState") == IN_SERVICE
        ]
        if ready:
            self.targets.register(member_target_group(target_group, group), ready)
        for listener in listeners:
            forward = forward_of(listener) or {}
            if arn in forward:
                continue
            home_arn = home["TargetGroupArn"]
            if listener_is_plain(listener):
                # Weights take over: the direct member keeps traffic only if it has targets.
                forward = {home_arn: 100 if self._has_targets(home_arn) else 0}
            self._modify(listener, {**forward, arn: 0})

    def _has_targets(self, arn: str) -> bool:
        elb = self._elb
        answer = self.session.call(
            "describe target health", lambda: elb.describe_target_health(TargetGroupArn=arn)
        )
        return bool(answer["TargetHealthDescriptions"])

    def follow_home(self, target_group: str) -> None:
        """Give home's members home's health check and deregistration delay again: they are
        copies of home made when each group attached, so a change of home (infrastructure's
        health-check path) reaches the instances that serve through the members."""
        home, _listeners, forward, names = self._current(target_group)
        members = [a for a in forward if a != home["TargetGroupArn"] and names[a] != name_of(a)]
        if not members:
            return
        elb = self._elb
        described = self.session.call(
            f"describe members of {target_group}",
            lambda: elb.describe_target_groups(TargetGroupArns=members)["TargetGroups"],
        )
        wanted = {k: home[k] for k in _HEALTH_FIELDS if k in home}
        home_attrs = self.session.call(
            f"describe attributes of {target_group}",
            lambda: elb.describe_target_group_attributes(TargetGroupArn=home["TargetGroupArn"]),
        )
        delay = [a for a in home_attrs["Attributes"] if a["Key"] == DELAY_ATTRIBUTE]
        for raw in described:
            arn, name = raw["TargetGroupArn"], raw["TargetGroupName"]
            if any(raw.get(k) != v for k, v in wanted.items()):
                self.session.call(
                    f"copy the health check of {target_group} to {name}",
                    lambda a=arn: elb.modify_target_group(TargetGroupArn=a, **wanted),  # type: ignore[misc]
                )
            if delay:
                self.session.call(
                    f"copy the deregistration delay of {target_group} to {name}",
                    lambda a=arn: elb.modify_target_group_attributes(  # type: ignore[misc]
                        TargetGroupArn=a, Attributes=delay
                    ),
                )

    def set(self, target_group: str, weights: Mapping[str, int]) -> None:
        _home, listeners, forward, names = self._current(target_group)
        if not listeners:
            raise Conflict(
                f"no listener forwards to {target_group}: weights need one", field="target_group"
            )
        by_name = {names[a]: a for a in forward}
        current = {names[a]: w for a, w in forward.items()}
        merged = merge_weights(target_group, current, weights)
        wanted = {by_name[n]: w for n, w in merged.items()}
        for listener in listeners:
            if forward_of(listener) != wanted:
                self._modify(listener, wanted)

    def detach(self, target_group: str, group: str) -> None:
        if group == target_group:
            raise InvalidInput(
                "the direct member cannot be detached; deregister its instances", field="group"
            )
        home = self._home(target_group)
        raw = self.targets._raw(member_target_group(target_group, group))
        if raw is None:
            return
        arn = str(raw["TargetGroupArn"])
        listeners = self._listeners(home)
        for listener in listeners:
            forward = forward_of(listener) or {}
            if forward.get(arn, 0) > 0:
                raise Conflict(
                    f"{group} still has weight {forward[arn]} on {target_group}; set it to 0 first",
                    field="weights",
                )
        for listener in listeners:
            forward = forward_of(listener) or {}
            if arn in forward:
                self._modify(listener, {a: w for a, w in forward.items() if a != arn})
        asg_raw = self.groups._raw(group)
        if asg_raw is not None and arn in asg_raw.get("TargetGroupARNs", ()):
            asg = self.session.client("autoscaling")
            self.session.call(
                f"detach {group} from its target group",
                lambda: asg.detach_load_balancer_target_groups(
                    AutoScalingGroupName=group, TargetGroupARNs=[arn]
                ),
            )
        elb = self._elb
        with contextlib.suppress(NotFound):
            self.session.call(
                f"delete target group of {group}",
                lambda: elb.delete_target_group(TargetGroupArn=arn),
            )


def listener_is_plain(listener: Mapping[str, Any]) -> bool:
    """True while the forward action names one target group without weights."""
    for action in listener.get("DefaultActions", ()):
        if action.get("Type") == "forward":
            return not (action.get("ForwardConfig") or {}).get("TargetGroups")
    return False
