"""The plan builder as a table: desired + live -> actions (pure, no provider)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from klink.errors import Conflict, InvalidInput
from klink.infra.plan import Live, build_plan
from klink.infra.resources import (
    LISTENER,
    LOAD_BALANCER,
    ROLE,
    SECURITY_GROUP,
    TARGET_GROUP,
    Definition,
    State,
    TargetGroupDef,
    managed_tags,
)
from klink.providers.infra import ListenerSpec, LoadBalancerSpec, RoleSpec, Rule, SecurityGroupSpec

TAGS = managed_tags("search", "prod")
WEB = SecurityGroupSpec(
    "search-web", "web", None, ingress=frozenset({Rule("tcp", 80, 80, cidr="0.0.0.0/0")}), tags=TAGS
)
LB_SG = SecurityGroupSpec("search-lb", "lb", None, tags=TAGS)
TG = TargetGroupDef("search-web", port=8080, tags=TAGS)
LB = LoadBalancerSpec(
    "search", "internet-facing", frozenset({"subnet-a", "subnet-b"}), frozenset({"search-lb"}), TAGS
)
LISTEN = ListenerSpec("search", 80, "HTTP", "search-web")
ROLE_SPEC = RoleSpec("search-prod", {"s3": {"Statement": [{"Effect": "Allow"}]}}, tags=TAGS)

FULL = State(
    security_groups={"search-web": WEB, "search-lb": LB_SG},
    target_groups={"search-web": TG},
    load_balancers={"search": LB},
    listeners={LISTEN.name: LISTEN},
    roles={"search-prod": ROLE_SPEC},
)


@dataclass
class Case:
    id: str
    desired: State
    live: State
    expected: list[tuple[str, str, str]]  # (op, kind, name)
    prune: bool = False
    fields: list[str] = field(default_factory=list)  # fields of the first update
    kept: int = 0


CASES = [
    Case(
        "create from nothing, in kind order",
        FULL,
        State(),
        [
            ("create", SECURITY_GROUP, "search-lb"),
            ("create", SECURITY_GROUP, "search-web"),
            ("create", TARGET_GROUP, "search-web"),
            ("create", LOAD_BALANCER, "search"),
            ("create", LISTENER, "search:80"),
            ("create", ROLE, "search-prod"),
        ],
    ),
    Case("nothing to do", FULL, FULL, []),
    Case(
        "an ingress rule changes",
        replace(
            FULL,
            security_groups={
                **FULL.security_groups,
                "search-web": replace(
                    WEB, ingress=frozenset({Rule("tcp", 443, 443, cidr="0.0.0.0/0")})
                ),
            },
        ),
        FULL,
        [("update", SECURITY_GROUP, "search-web")],
        fields=["ingress"],
    ),
    Case(
        "a health-check path changes",
        replace(FULL, target_groups={"search-web": replace(TG, health_check_path="/ready")}),
        FULL,
        [("update", TARGET_GROUP, "search-web")],
        fields=["health_check_path"],
    ),
    Case(
        "a policy document changes",
        replace(
            FULL,
            roles={
                "search-prod": replace(
                    ROLE_SPEC, policies={"s3": {"Statement": [{"Effect": "Deny"}]}}
                )
            },
        ),
        FULL,
        [("update", ROLE, "search-prod")],
        fields=["policies.s3"],
    ),
    Case(
        "key order inside a policy is not a change",
        FULL,
        replace(
            FULL,
            roles={
                "search-prod": replace(
                    ROLE_SPEC, policies={"s3": {"Statement": [{"Effect": "Allow"}]}}
                )
            },
        ),
        [],
    ),
    Case(
        "a missing instance profile is repaired",
        FULL,
        replace(FULL, roles={"search-prod": replace(ROLE_SPEC, instance_profile=False)}),
        [("update", ROLE, "search-prod")],
        fields=["instance_profile"],
    ),
    Case(
        "a listener forwards elsewhere",
        replace(FULL, listeners={LISTEN.name: replace(LISTEN, target_group="search-api")}),
        FULL,
        [("update", LISTENER, "search:80")],
        fields=["target_group"],
    ),
    Case(
        "load balancer security groups change",
        replace(
            FULL,
            load_balancers={"search": replace(LB, security_groups=frozenset({"search-web"}))},
        ),
        FULL,
        [("update", LOAD_BALANCER, "search")],
        fields=["security_groups"],
    ),
    Case(
        "an untagged resource of that name is adopted by tagging",
        FULL,
        replace(FULL, target_groups={"search-web": replace(TG, tags={})}),
        [("update", TARGET_GROUP, "search-web")],
        fields=["tags"],
    ),
    Case(
        "tags others add are not drift",
        FULL,
        replace(FULL, target_groups={"search-web": replace(TG, tags={**TAGS, "team": "x"})}),
        [],
    ),
    Case(
        "removed without prune: kept, no action",
        State(security_groups={"search-web": WEB}),
        State(security_groups={"search-web": WEB, "search-old": replace(WEB, name="search-old")}),
        [],
        kept=1,
    ),
    Case(
        "removed with prune: deleted, listeners before balancers before groups",
        State(),
        FULL,
        [
            ("delete", ROLE, "search-prod"),
            ("delete", LISTENER, "search:80"),
            ("delete", LOAD_BALANCER, "search"),
            ("delete", TARGET_GROUP, "search-web"),
            ("delete", SECURITY_GROUP, "search-lb"),
            ("delete", SECURITY_GROUP, "search-web"),
        ],
        prune=True,
    ),
    Case(
        "creates come before deletes",
        State(security_groups={"search-new": replace(WEB, name="search-new")}),
        State(load_balancers={"search": LB}),
        [("create", SECURITY_GROUP, "search-new"), ("delete", LOAD_BALANCER, "search")],
        prune=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_plan_table(case: Case) -> None:
    plan = build_plan(Definition("search", "prod", case.desired, case.prune), Live(case.live))
    assert [(a.op, a.kind, a.name) for a in plan.actions] == case.expected
    if case.fields:
        assert [c.field for c in plan.actions[0].changes] == case.fields
    assert len(plan.kept) == case.kept
    assert plan.empty == (not case.expected)


def test_update_line_names_exactly_the_change() -> None:
    desired = replace(
        FULL,
        security_groups={
            **FULL.security_groups,
            "search-web": replace(
                WEB,
                ingress=frozenset(
                    {
                        Rule("tcp", 80, 80, cidr="0.0.0.0/0"),
                        Rule("tcp", 443, 443, group="search-lb"),
                    }
                ),
            ),
        },
    )
    plan = build_plan(Definition("search", "prod", desired), Live(FULL))
    assert [a.line for a in plan.actions] == [
        "update security group search-web: ingress +tcp 443 group search-lb"
    ]


def test_plan_hash_is_stable_and_follows_the_actions() -> None:
    definition = Definition("search", "prod", FULL)
    first = build_plan(definition, Live(State()))
    again = build_plan(definition, Live(State()))
    other = build_plan(definition, Live(State(security_groups={"search-lb": LB_SG})))
    assert first.plan_hash == again.plan_hash
    assert first.plan_hash != other.plan_hash
    assert build_plan(definition, Live(FULL)).plan_hash != first.plan_hash


def test_a_name_managed_by_another_app_is_a_conflict() -> None:
    live = Live(State(), foreign={(LOAD_BALANCER, "search"): "app other in prod"})
    with pytest.raises(Conflict, match="managed by app other"):
        build_plan(Definition("search", "prod", FULL), live)


def test_aws_only_kinds_are_reported_not_applicable() -> None:
    live = Live(
        State(), unsupported_kinds=frozenset({SECURITY_GROUP, LOAD_BALANCER, LISTENER, ROLE})
    )
    plan = build_plan(Definition("search", "prod", FULL), live)
    assert [(a.op, a.kind) for a in plan.actions] == [("create", TARGET_GROUP)]
    assert len(plan.not_applicable) == 5
    assert "security group search-lb: not applicable" in plan.not_applicable[0]


def test_a_security_group_that_does_not_exist_is_refused_before_apply() -> None:
    desired = replace(
        FULL,
        security_groups={
            **FULL.security_groups,
            "search-web": replace(
                WEB, ingress=frozenset({Rule("tcp", 80, 80, group="shared-monitoring")})
            ),
        },
    )
    with pytest.raises(InvalidInput) as caught:
        build_plan(
            Definition("search", "prod", desired), Live(State(), existing_groups=frozenset())
        )
    assert caught.value.field == "securityGroups.search-web"
    shared = Live(State(), existing_groups=frozenset({"shared-monitoring"}))
    assert build_plan(Definition("search", "prod", desired), shared).actions
