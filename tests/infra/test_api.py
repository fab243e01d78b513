"""The infra service through a live server: config repo (real git push), metadata, moto.

One scenario walks the issue's API: plan at a commit, apply with a stale hash (409), apply the
plan shown, history, a bad definition refused at push time, drift found by the scheduler's
check and reverted by automatic apply; plus auth and bad input, and the CLI against the same
server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from klink.cli.main import main
from klink.errors import Conflict
from klink.infra.client import InfraClient
from klink.providers.aws.provider import AwsProvider
from tests.config.conftest import Git
from tests.conftest import LiveServer
from tests.infra.conftest import boto
from tests.infra.test_weights_aws import MEMBERS, WEIGHTS, attach_two_groups, forwards

pytestmark = pytest.mark.slow

DEFINITION = {
    "securityGroups": {
        "search-web": {"ingress": [{"protocol": "tcp", "ports": 8080, "from": ["10.0.0.0/8"]}]}
    },
    "targetGroups": {"search-web": {"port": 8080, "healthCheck": {"path": "/healthcheck"}}},
    "role": {
        "policies": {
            "s3": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        }
    },
}


class World:
    def __init__(self, server: LiveServer, tmp_path: Path, moto: str) -> None:
        self.server = server
        self.tmp_path = tmp_path
        self.moto = moto
        self.http = server.client()
        self.http.timeout = httpx.Timeout(120.0)
        self.git = Git(server.token)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code < 400, response.text
        return response.json() if response.content else None

    def setup(self, infra: dict[str, Any] | None = None, **app: Any) -> None:
        metadata = {
            "provider": "aws",
            "region": "us-east-1",
            "endpoint_url": self.moto,
            "createConfigRepo": True,
            "infra": infra or {},
        }
        self.ok("PUT", "/metadata/environments/prod", json={"metadata": metadata})
        self.ok(
            "PUT",
            "/metadata/applications/search",
            json={"metadata": {"contact": "search@example.com", **app}},
        )
        self.work = self.tmp_path / "search-prod"
        url = f"{self.server.url}/config/git/search-prod.git"
        self.git.run(["clone", "--quiet", url, str(self.work)])

    def push(self, definition: Any, *, check: bool = True) -> Any:
        text = definition if isinstance(definition, str) else yaml.safe_dump(definition)
        (self.work / "infrastructure.yaml").write_text(text)
        self.git.run(["add", "infrastructure.yaml"], cwd=self.work)
        self.git.run(["commit", "--quiet", "-m", "infrastructure"], cwd=self.work)
        done = self.git.run(["push", "--quiet", "origin", "HEAD"], cwd=self.work, check=check)
        if not check:
            self.git.run(["reset", "--quiet", "--hard", "HEAD~1"], cwd=self.work)
        return done


@pytest.fixture
def world(live_server: LiveServer, tmp_path: Path, moto: str) -> World:
    w = World(live_server, tmp_path, moto)
    yield w  # type: ignore[misc]
    w.http.close()


def test_plan_apply_history_through_the_api(world: World) -> None:
    world.setup()
    world.push(DEFINITION)
    plan = world.ok("GET", "/infra/search/prod/plan")
    assert [(a["op"], a["kind"]) for a in plan["actions"]] == [
        ("create", "security_group"),
        ("create", "target_group"),
        ("create", "role"),
    ]
    assert len(plan["commit"]) == 40

    stale = world.http.post(
        "/infra/search/prod/apply", json={"at": plan["commit"], "plan_hash": "0" * 64}
    )
    assert stale.status_code == 409
    assert stale.json()["error"]["field"] == "plan_hash"
    assert world.ok("GET", "/infra/search/prod/history")["history"] == []

    entry = world.ok(
        "POST",
        "/infra/search/prod/apply",
        json={"at": plan["commit"], "plan_hash": plan["plan_hash"]},
    )
    assert entry["status"] == "succeeded"
    assert entry["result"]["done"] == [a["line"] for a in plan["actions"]]
    assert world.ok("GET", "/infra/search/prod/plan")["empty"] is True

    history = world.ok("GET", "/infra/search/prod/history")["history"]
    assert [(h["actor"], h["commit"], h["status"]) for h in history] == [
        ("admin", plan["commit"], "succeeded")
    ]
    assert len(history[0]["actions"]) == 3

    # A bad definition never lands: the push is refused, naming the field.
    refused = world.push({"targetGroups": {"search-web": {"port": "eighty"}}}, check=False)
    assert refused.returncode != 0
    assert "targetGroups.search-web.port" in refused.stderr


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real webhook receiver on loopback, recording what it is sent."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_drift_is_reported_and_applied_automatically(
    world: World, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    world.setup({"autoApply": True}, deploymentRooms={"prod": [url]})
    world.push(DEFINITION)
    world.ok("POST", "/infra/search/prod/apply", json={})
    ec2 = boto(world.moto, "ec2")
    group = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["search-web"]}]
    )["SecurityGroups"][0]
    ec2.authorize_security_group_ingress(
        GroupId=group["GroupId"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    # An app without infrastructure.yaml here has nothing to reconcile: no report, no error.
    world.ok("PUT", "/metadata/applications/other", json={"metadata": {"contact": "o@x.io"}})
    ran = world.ok("POST", "/infra/drift/run", params={"env": "prod"})
    assert ran["checked"] == ["prod"]
    [report] = ran["reports"]
    assert report["drifted"] is True
    assert [a["line"] for a in report["actions"]] == [
        "update security group search-web: ingress -tcp 22 0.0.0.0/0"
    ]
    assert report["applied"] is not None
    history = world.ok("GET", "/infra/search/prod/history")["history"]
    assert history[0]["actor"] == "scheduler"
    assert history[0]["status"] == "succeeded"
    group = ec2.describe_security_groups(GroupIds=[group["GroupId"]])["SecurityGroups"][0]
    assert all(p.get("FromPort") != 22 for p in group["IpPermissions"])
    assert world.ok("GET", "/infra/drift")["reports"][0]["app"] == "search"
    [message] = received
    assert message["text"] == (
        "Infrastructure drift in search/prod: "
        "update security group search-web: ingress -tcp 22 0.0.0.0/0"
        " (applied automatically: succeeded)"
    )
    assert message["event"]["event"] == "infra_drift"


def test_a_deployment_over_weights_is_no_drift_and_never_reset(
    world: World, webhook: tuple[str, list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    """The weighted forward a deployment set on the listener is the deployment's business:
    the scheduled check finds no drift, announces nothing, and its automatic apply (on) has
    nothing to reset."""
    url, received = webhook
    ec2 = boto(world.moto, "ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    found = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    subnets = sorted(s["SubnetId"] for s in found["Subnets"])[:2]
    world.setup(
        {"autoApply": True, "subnets": {"public": subnets}}, deploymentRooms={"prod": [url]}
    )
    world.push(
        {
            **DEFINITION,
            "loadBalancers": {
                "search": {
                    "subnets": "public",
                    "listeners": [{"port": 80, "targetGroup": "search-web"}],
                }
            },
        }
    )
    assert world.ok("POST", "/infra/search/prod/apply", json={})["status"] == "succeeded"
    environment = world.ok("GET", "/metadata/environments/prod")["metadata"]
    provider = AwsProvider.from_environment("prod", environment)
    try:
        attach_two_groups(world.moto, provider, subnets[0])
        before = forwards(world.moto)
        ran = world.ok("POST", "/infra/drift/run", params={"env": "prod"})
        assert forwards(world.moto) == before == {80: MEMBERS}  # nothing was reset
        [report] = ran["reports"]
        assert (report["drifted"], report["actions"], report["applied"]) == (False, [], None)
        assert received == []
        assert provider.traffic("search-web").weights() == {**WEIGHTS, "search-web": 0}
    finally:
        provider.close()
    common = ["--server", world.server.url, "--token", world.server.token]
    assert main(["infra", "plan", "search", "prod", "--json", *common]) == 0
    assert json.loads(capsys.readouterr().out)["empty"] is True


def test_writes_need_deployer_on_the_env_and_bad_input_names_the_field(world: World) -> None:
    world.setup()
    world.push(DEFINITION)
    other = world.ok(
        "POST", "/auth/tokens", json={"name": "d", "role": "deployer", "envs": ["poke"]}
    )
    reader = world.ok("POST", "/auth/tokens", json={"name": "r", "role": "reader"})
    with world.server.client(other["token"]) as http:
        assert http.post("/infra/search/prod/apply", json={}).status_code == 403
    with world.server.client(reader["token"]) as http:
        assert http.post("/infra/search/prod/apply", json={}).status_code == 403
        assert http.get("/infra/search/prod/plan").status_code == 200
    bad = world.http.get("/infra/Search/prod/plan")
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "app"
    bad = world.http.post("/infra/search/prod/apply", json={"plan_hash": "xyz"})
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "plan_hash"
    missing = world.http.get("/infra/search/prod/plan", params={"at": "0" * 40})
    assert missing.status_code == 404
    # The service's own client (what other services use) speaks the same API.
    client = InfraClient(
        httpx.Client(
            base_url=f"{world.server.url}/infra",
            headers={"Authorization": f"Bearer {world.server.token}"},
            timeout=120,
        )
    )
    shown = client.plan("search", "prod")
    assert len(shown["actions"]) == 3
    with pytest.raises(Conflict):
        client.apply("search", "prod", at=shown["commit"], plan_hash="0" * 64)
    assert client.history("search", "prod") == []
    assert client.drift("prod") == []
    client.http.close()
    # A definition referring to what the environment does not have: 400 naming the field.
    world.push({"securityGroups": {"search-web": {"ingress": [{"use": "nope"}]}}})
    bad = world.http.get("/infra/search/prod/plan")
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "securityGroups.search-web.ingress.0.use"


def test_cli_plan_apply_history(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.setup()
    world.push(DEFINITION)
    common = ["--server", world.server.url, "--token", world.server.token]
    assert main(["infra", "plan", "search", "prod", *common]) == 0
    out = capsys.readouterr().out
    assert "+ create security group search-web" in out
    # Asked to confirm with no terminal: usage error, nothing applied.
    assert main(["infra", "apply", "search", "prod", *common]) == 2
    assert "pass --yes" in capsys.readouterr().err
    assert main(["infra", "history", "search", "prod", "--json", *common]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["infra", "apply", "search", "prod", "--yes", "--json", *common]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert entry["status"] == "succeeded"
    assert main(["infra", "plan", "search", "prod", "--json", *common]) == 0
    assert json.loads(capsys.readouterr().out)["empty"] is True
    assert main(["infra", "history", "search", "prod", "--json", *common]) == 0
    assert [h["id"] for h in json.loads(capsys.readouterr().out)] == [entry["id"]]
    assert main(["infra", "plan", "search", "nope", *common]) == 1
    assert "nope" in capsys.readouterr().err
    assert main(["infra", "drift", "prod", "--now", *common]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["ENV", "APP", "STATE", "CHECKED", "DETAIL"]
    assert out.splitlines()[1].split()[:3] == ["prod", "search", "ok"]
