"""The release verbs through ``klink``'s main() against a live server on loopback:
promote (with and without promotesFrom), deployments showing lineage and waitingFor, approve
by a second token, reject, pause with a reason."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from klink.cli.main import main
from klink.deploy.approvals import Decisions
from klink.deploy.engine import Engine
from klink.deploy.store import DeploymentStore
from klink.service.runtime import utcnow
from klink.testing.fake_provider import FakeProvider
from tests.conftest import LiveServer
from tests.deploy.conftest import IMG2
from tests.deploy.test_cli import _fake_services, _prepare, drain

pytestmark = pytest.mark.slow


@pytest.fixture
def served(live_server: LiveServer) -> tuple[LiveServer, FakeProvider, str]:
    """search in poke (IMG2 running) and prod (approvals required); alice's token."""
    fake = FakeProvider(pending_polls=1, delete_polls=0)
    runtime = live_server.runtime
    decisions = Decisions(runtime.engine)
    runtime.extras["deploy.services"] = lambda: replace(
        _fake_services(runtime, fake), decisions=decisions
    )
    with live_server.client() as http:
        _prepare(runtime, http, fake, runtime.settings.home, '{"targetGroups": ["web"]}')
        http.put("/metadata/environments/poke", json={"metadata": {"provider": "local"}})
        assert http.post("/config/repos/search/poke").status_code < 300
        value = {"value": {"required": 1}}
        assert http.put("/metadata/environments/prod/approvals", json=value).status_code < 300
        created = http.post("/auth/tokens", json={"name": "alice", "role": "deployer"})
        alice = created.json()["token"]
    return live_server, fake, alice


def klink(
    capsys: pytest.CaptureFixture[str], server: LiveServer, *argv: str, token: str | None = None
) -> tuple[int, str, str]:
    code = main([*argv, "--server", server.url, "--token", token or server.token])
    out, err = capsys.readouterr()
    return code, out, err


def settle(server: LiveServer) -> None:
    runtime = server.runtime
    engine = Engine(
        DeploymentStore(runtime.engine), runtime.extras["deploy.services"](), clock=utcnow
    )
    while engine.run_once():
        pass


def test_promote_approve_watch(
    capsys: pytest.CaptureFixture[str], served: tuple[LiveServer, FakeProvider, str]
) -> None:
    server, fake, alice = served
    code, out, err = klink(
        capsys, server, "deploy", "search", "poke", IMG2, "-m", "x", "--no-wait", "--json"
    )
    assert code == 0, err
    source = json.loads(out)["id"]
    drain(server)
    code, out, err = klink(capsys, server, "promote", "search", "prod", "-m", "go")
    assert code == 1
    assert err.startswith("klink: environment prod names no promotesFrom")
    assert err.count("\n") == 1
    code, out, err = klink(
        capsys, server, "promote", "search", "poke", "prod", "-m", "go", "--dry-run"
    )
    assert code == 0, err
    assert "dry run: search/prod image img-000000000002" in out
    assert "await_approval" in out
    with server.client() as http:
        value = {"value": "poke"}
        assert http.put("/metadata/environments/prod/promotesFrom", json=value).status_code < 300
    code, out, err = klink(
        capsys, server, "promote", "search", "prod", "-m", "go", "--no-wait", "--json"
    )
    assert code == 0, err
    promoted = json.loads(out)["id"]
    settle(server)
    code, out, _ = klink(capsys, server, "deployments", "search", "prod")
    row = next(line for line in out.splitlines() if line.startswith(promoted))
    assert f"poke ({source})" in row
    assert "approvals 0 of 1 from deployer on prod" in row
    code, _, err = klink(capsys, server, "approve", promoted, "-m", "mine")
    assert code == 1
    assert "notTheRequester" in err
    code, out, err = klink(capsys, server, "approve", promoted, "-m", "lgtm", token=alice)
    assert code == 0, err
    assert out.strip() == (
        f"deployment {promoted} approved: preparing; approvals 1 of 1 from deployer on prod"
    )
    drain(server)
    code, out, _ = klink(capsys, server, "watch", promoted)
    assert code == 0
    assert "approved by alice (1 of 1): lgtm" in out
    assert fake.describe_group("search-prod-v000").launch_template


def test_reject_and_pause_with_a_reason(
    capsys: pytest.CaptureFixture[str], served: tuple[LiveServer, FakeProvider, str]
) -> None:
    server, fake, alice = served
    code, out, _ = klink(
        capsys, server, "deploy", "search", "prod", IMG2, "-m", "x", "--no-wait", "--json"
    )
    first = json.loads(out)["id"]
    settle(server)
    code, out, err = klink(capsys, server, "pause", "search", "prod", "-m", "checking dashboards")
    assert code == 0, err
    code, out, _ = klink(capsys, server, "deployments", "search", "prod")
    assert "paused by admin: checking dashboards" in out
    code, out, err = klink(capsys, server, "reject", first, "-m", "not today", token=alice)
    assert code == 0, err
    assert out.strip() == f"deployment {first} rejected: cancelled"
    code, out, err = klink(capsys, server, "watch", first)
    assert code == 1
    assert "rejected by alice: not today" in err
    assert fake.count("create_group") == 0
    code, _, err = klink(capsys, server, "override", first, "-m", "x", token=alice)
    assert code == 1
    assert "admin" in err
