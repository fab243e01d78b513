"""What a listener's forward action means to Klink: the target group it fronts and the
deployment groups' members weighted beside it.

Traffic by weight (``traffic.py``) turns a listener's plain forward into
``ForwardConfig.TargetGroups`` with weights: the *home* target group (the one infrastructure
defines and the listener fronts) plus one member target group per attached deployment group,
tagged ``klink:traffic-of`` = home and ``klink:group`` = the group. Both the traffic
capability and infrastructure's listener reconciliation (``infra/balancers.py``) read listeners
through this module, so they cannot disagree about which target group a weighted listener
fronts. Reads go through ``AwsSession.call``; nothing is cached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from klink.providers.aws.convert import arn_resource_name, chunks, forward_of, tags_of
from klink.providers.aws.session import AwsSession

TAG_TRAFFIC_OF = "klink:traffic-of"
TAG_GROUP = "klink:group"


@dataclass(frozen=True)
class Forward:
    """One listener's default forward action, read with its target groups' tags."""

    weights: Mapping[str, int]  # target group ARN → weight, in the action's order
    # Member ARN → (home target group name, deployment group) for deployment groups' members.
    members: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def homes(self) -> tuple[str, ...]:
        """The target groups the listener fronts: every target group in the action that is
        no deployment group's member, and the homes the members name (sorted)."""
        names = {name_of(a) for a in self.weights if a not in self.members}
        names |= {home for home, _group in self.members.values()}
        return tuple(sorted(names))

    def of_home(self, home: str, home_arn: str) -> dict[str, int]:
        """ARN → weight of ``home`` itself and its members, in the action's order."""
        return {
            arn: weight
            for arn, weight in self.weights.items()
            if arn == home_arn or self.members.get(arn, ("", ""))[0] == home
        }

    def groups(self) -> dict[str, int]:
        """Deployment group → weight of every member in the action."""
        return {group: self.weights[arn] for arn, (_home, group) in self.members.items()}


def name_of(arn: str) -> str:
    return arn_resource_name(arn, ":targetgroup/")


def target_group_tags(session: AwsSession, arns: Sequence[str]) -> dict[str, dict[str, str]]:
    """ARN → tags of target groups (``DescribeTags``, 20 at a time)."""
    elb = session.client("elbv2")
    unique = sorted(set(arns))

    def run() -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for batch in chunks(unique, 20):
            for desc in elb.describe_tags(ResourceArns=list(batch))["TagDescriptions"]:
                found[desc["ResourceArn"]] = tags_of(desc.get("Tags"))
        return found

    return session.call("describe tags of target groups", run) if unique else {}


def read_forward(
    listener: Mapping[str, Any], tags: Mapping[str, Mapping[str, str]]
) -> Forward | None:
    """The listener's default forward action (None when it has none), members told apart by
    their tags: a member names its home and its group."""
    weights = forward_of(listener)
    if weights is None:
        return None
    members = {}
    for arn in weights:
        own = tags.get(arn, {})
        home, group = own.get(TAG_TRAFFIC_OF), own.get(TAG_GROUP)
        if home and group and home != name_of(arn):
            members[arn] = (home, group)
    return Forward(weights, members)


def with_forward(listener: Mapping[str, Any], weights: Mapping[str, int]) -> list[dict[str, Any]]:
    """The listener's default actions with its forward action set to ``weights`` (ARN order
    kept stable: home first, then as given)."""
    actions = []
    for action in listener.get("DefaultActions", ()):
        if action.get("Type") != "forward":
            actions.append(dict(action))
            continue
        config = dict(action.get("ForwardConfig") or {})
        config["TargetGroups"] = [{"TargetGroupArn": a, "Weight": w} for a, w in weights.items()]
        new = {k: v for k, v in action.items() if k not in ("TargetGroupArn", "ForwardConfig")}
        new["ForwardConfig"] = config
        actions.append(new)
    return actions


def forward_action(weights: Mapping[str, int]) -> dict[str, Any]:
    """A default forward action: plain for one target group at full weight, weighted else."""
    if len(weights) == 1 and next(iter(weights.values())) > 0:
        return {"Type": "forward", "TargetGroupArn": next(iter(weights))}
    groups = [{"TargetGroupArn": arn, "Weight": weight} for arn, weight in weights.items()]
    return {"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}


def listeners_fronting(session: AwsSession, home: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Listeners of home's balancers whose default forward action includes home (described
    ``TargetGroups`` entry ``home``), sorted by ARN."""
    elb, arn = session.client("elbv2"), home["TargetGroupArn"]
    out: dict[str, dict[str, Any]] = {}
    # moto names the balancer once per listener: each balancer is read once.
    for lb_arn in sorted(set(home.get("LoadBalancerArns", ()))):

        def run(lb: str = lb_arn) -> list[dict[str, Any]]:
            pages = elb.get_paginator("describe_listeners").paginate(LoadBalancerArn=lb)
            try:
                return [x for page in pages for x in page["Listeners"]]
            except ClientError as exc:
                # A balancer deleted since the target group was described (a race on AWS;
                # moto keeps the ARN for good): it has no listeners any more.
                if exc.response.get("Error", {}).get("Code") == "LoadBalancerNotFound":
                    return []
                raise

        for listener in session.call(f"describe listeners of {lb_arn}", run):
            forward = forward_of(listener)
            if forward is not None and arn in forward:
                out[listener["ListenerArn"]] = listener
    return [out[a] for a in sorted(out)]
