"""infrastructure.yaml: schema, references, names, environment values (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from klink.errors import InvalidInput
from klink.infra.model import check_definition_text, config_problems, parse_definition
from klink.providers.infra import ALL_EGRESS, Rule

ENV_INFRA: dict[str, Any] = {
    "vpc": "vpc-123",
    "subnets": {"public": ["subnet-a", "subnet-b"]},
    "securityGroups": ["shared-monitoring"],
    "ingressRules": {"https": [{"protocol": "tcp", "ports": 443, "from": ["0.0.0.0/0"]}]},
    "policies": {"read-s3": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]}},
    "defaultPolicies": {
        "logs": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:*"}]}
    },
}

TEXT = """
prune: true
securityGroups:
  search-lb:
    ingress:
      - use: https
  search-web:
    ingress:
      - {protocol: tcp, ports: 8000-8100, from: [search-lb, shared-monitoring, 10.0.0.0/8]}
      - {protocol: all, from: ["192.168.0.0/16"]}
targetGroups:
  search-web:
    port: 8080
    healthCheck: {path: /ready, intervalSeconds: 10, healthyThreshold: 3}
loadBalancers:
  search:
    subnets: public
    securityGroups: [search-lb]
    listeners:
      - {port: 80, targetGroup: search-web}
role:
  policies:
    s3: read-s3
"""


def test_a_full_definition_resolves_environment_values() -> None:
    d = parse_definition(TEXT, "search", "prod", ENV_INFRA)
    assert d.prune is True
    web = d.desired.security_groups["search-web"]
    assert web.vpc_id == "vpc-123"
    assert web.ingress == {
        Rule("tcp", 8000, 8100, group="search-lb"),
        Rule("tcp", 8000, 8100, group="shared-monitoring"),
        Rule("tcp", 8000, 8100, cidr="10.0.0.0/8"),
        Rule("-1", 0, 65535, cidr="192.168.0.0/16"),
    }
    assert web.egress == ALL_EGRESS
    assert d.desired.security_groups["search-lb"].ingress == {
        Rule("tcp", 443, 443, cidr="0.0.0.0/0")
    }
    assert web.tags == {"klink:managed-by": "infra", "klink:app": "search", "klink:env": "prod"}
    tg = d.desired.target_groups["search-web"]
    assert (tg.health_check_path, tg.health_check_interval_seconds, tg.healthy_threshold) == (
        "/ready",
        10,
        3,
    )
    lb = d.desired.load_balancers["search"]
    assert lb.subnets == {"subnet-a", "subnet-b"}
    assert lb.scheme == "internet-facing"
    assert list(d.desired.listeners) == ["search:80"]
    role = d.desired.roles["search-prod"]
    assert set(role.policies) == {"s3", "logs"}  # the environment's default policy appended
    assert role.policies["s3"] == ENV_INFRA["policies"]["read-s3"]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("targetGroups: {search-web: {port: eighty}}", "targetGroups.search-web.port"),
        ("targetGroups: {search-web: {port: 80, colour: red}}", "targetGroups.search-web"),
        (
            "loadBalancers: {search: {subnets: public, scheme: outside}}",
            "loadBalancers.search.scheme",
        ),
        ("targetGroups: {Search_Web: {port: 80}}", "targetGroups"),
        ("targetGroups: {other-web: {port: 80}}", "targetGroups.other-web"),
        (
            "securityGroups: {search-web: {ingress: [{use: nope}]}}",
            "securityGroups.search-web.ingress.0.use",
        ),
        (
            "securityGroups: {search-web: {ingress: [{ports: 80, from: [search-db]}]}}",
            "securityGroups.search-web.ingress",
        ),
        (
            "securityGroups: {search-web: {ingress: [{protocol: tcp, from: [10.0.0.0/8]}]}}",
            "securityGroups.search-web.ingress.0.ports",
        ),
        (
            "loadBalancers: {search: {subnets: private, listeners: []}}",
            "loadBalancers.search.subnets",
        ),
        (
            "targetGroups: {search-web: {port: 80}}\n"
            "loadBalancers: {search: {subnets: public, listeners: [{port: 80, targetGroup: x}]}}",
            "loadBalancers.search.listeners.0.targetGroup",
        ),
        (
            "targetGroups: {search-web: {port: 80}}\n"
            "loadBalancers: {search: {subnets: public, listeners: "
            "[{port: 443, protocol: HTTPS, targetGroup: search-web}]}}",
            "loadBalancers.search.listeners.0.certificate",
        ),
        (
            "targetGroups: {search-web: {port: 80}}\n"
            "loadBalancers: {search: {subnets: public, listeners: "
            "[{port: 80, targetGroup: search-web, certificate: arn:aws:acm:x}]}}",
            "loadBalancers.search.listeners.0.certificate",
        ),
        (
            "targetGroups: {search-web: {port: 80}}\n"
            "loadBalancers: {search: {subnets: public, listeners: "
            "[{port: 443, protocol: HTTPS, targetGroup: search-web, certificate: nope}]}}",
            "loadBalancers.search.listeners.0.certificate",
        ),
        ("role: {policies: {logs: read-s3}}", "role.policies.logs"),
        ("role: {policies: {s3: {Statement: []}}}", "role.policies.s3"),
        ("role: {name: other-role}", "role.name"),
        ("prune: yes please", "prune"),
        ("targetGroups: {search-web: {port: 80}, search-web: {port: 81}}", "infrastructure.yaml"),
        ("targetGroups: [", "infrastructure.yaml"),
    ],
)
def test_bad_definitions_name_the_field(text: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_definition(text, "search", "prod", ENV_INFRA)
    assert caught.value.field == field, caught.value.message


def test_every_problem_is_reported_at_once() -> None:
    text = "targetGroups: {search-a: {port: 0}, search-b: {port: 99999}}"
    with pytest.raises(InvalidInput) as caught:
        parse_definition(text, "search", "prod", ENV_INFRA)
    assert "search-a.port" in caught.value.message
    assert "search-b.port" in caught.value.message


def test_bad_environment_values_name_the_infra_key() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_definition("{}", "search", "prod", {"vpc": "not-a-vpc"})
    assert caught.value.field == "infra.vpc"


def test_push_time_check_needs_only_the_file() -> None:
    # Environment references cannot be checked at push time; shape and in-file ones can.
    assert check_definition_text("securityGroups: {search-web: {ingress: [{use: https}]}}") == []
    assert config_problems({"targetGroups": {"search-web": {"port": 80}}}, "aws") == []
    [problem] = config_problems({"targetGroups": {"search-web": {}}}, "aws")
    assert problem.field == "targetGroups.search-web"
    assert "port" in problem.message
    assert check_definition_text("a: [")[0].field == "infrastructure.yaml"
    assert config_problems(None, "local") == []  # an empty file defines nothing


@pytest.mark.parametrize(
    ("check", "field"),
    [
        ({"intervalSeconds": 1}, "intervalSeconds"),
        ({"healthyThreshold": 1}, "healthyThreshold"),
        ({"unhealthyThreshold": 1}, "unhealthyThreshold"),
    ],
)
def test_fast_health_checks_are_for_the_local_provider_only(
    check: dict[str, int], field: str
) -> None:
    data = {"targetGroups": {"search-web": {"port": 8080, "healthCheck": check}}}
    assert config_problems(data, "local") == []
    problems = config_problems(data, "aws")
    assert [p.field for p in problems] == [f"targetGroups.search-web.healthCheck.{field}"]
    assert "minimum on aws" in problems[0].message
