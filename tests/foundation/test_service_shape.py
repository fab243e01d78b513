"""What every service has: healthcheck, ping, metrics, OpenAPI; settings errors; names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from klink import names
from klink.errors import Conflict, InvalidInput, SettingsError
from klink.server import SERVICES
from klink.service import HealthCheck, Runtime, make_service
from klink.settings import Settings
from tests.conftest import LiveServer


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_has_health_ping_metrics_openapi(
    live_server: LiveServer, service: str
) -> None:
    # A live server: a healthcheck also checks the services this one calls.
    client = live_server.client()
    health = client.get(f"/{service}/healthcheck")
    assert health.status_code == 200
    body = health.json()
    assert body["name"] == service
    assert body["success"] is True
    assert {"name": "database", "success": True} in body["dependencies"]
    assert client.get(f"/{service}/ping").text == "pong"
    client.get(f"/{service}/nothing")
    metrics = client.get(f"/{service}/metrics").text
    assert f'service="{service}"' in metrics
    assert "klink_http_request_seconds" in metrics
    assert client.get(f"/{service}/openapi.json").json()["info"]["title"] == f"klink {service}"
    client.close()


def test_healthcheck_is_500_when_a_dependency_fails(runtime: Runtime) -> None:
    def broken() -> bool:
        raise OSError("disk gone")

    app = make_service(
        "probe",
        runtime,
        [],
        checks=[HealthCheck("git", lambda: False), HealthCheck("disk", broken)],
    )
    with TestClient(app) as probe:
        response = probe.get("/healthcheck")
    assert response.status_code == 500
    body = response.json()
    assert body["success"] is False
    assert {"name": "git", "success": False} in body["dependencies"]
    assert {"name": "disk", "success": False} in body["dependencies"]
    assert {"name": "database", "success": True} in body["dependencies"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KLINK_LISTEN", "nope"),
        ("KLINK_LISTEN", "127.0.0.1:99999"),
        ("KLINK_ENGINE", "maybe"),
        ("KLINK_ENGINE_WORKERS", "-1"),
        ("KLINK_LEASE_SECONDS", "soon"),
        ("KLINK_LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_settings_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({variable: value})
    assert info.value.field == variable
    assert variable in info.value.message


def test_settings_defaults() -> None:
    settings = Settings.from_env({"KLINK_HOME": "/tmp/k"})
    assert settings.database_url == "sqlite:////tmp/k/klink.db"
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.1", 8642)
    assert settings.service_url("config") == "http://127.0.0.1:8642/config"
    split = Settings.from_env({"KLINK_CONFIG_URL": "http://cfg:9000/config/"})
    assert split.service_url("config") == "http://cfg:9000/config"


@pytest.mark.parametrize("bad", ["", "A", "1a", "a-b", "a_b", "a" * 33, "é", None, 3])
def test_bad_names(bad: object) -> None:
    with pytest.raises(InvalidInput):
        names.check_name(bad)


def test_group_names_wrap_and_skip_taken() -> None:
    assert names.next_group_name("search", "prod", None, []) == "search-prod-v000"
    assert names.next_group_name("search", "prod", "search-prod-v041", []) == "search-prod-v042"
    assert names.next_group_name("search", "prod", "search-prod-v999", []) == "search-prod-v000"
    taken = ["search-prod-v000", "search-prod-v001"]
    assert names.next_group_name("search", "prod", "search-prod-v999", taken) == "search-prod-v002"
    everything = [names.group_name("a", "b", i) for i in range(1000)]
    with pytest.raises(Conflict):
        names.next_group_name("a", "b", "a-b-v010", everything)


def test_group_pattern_is_exact() -> None:
    assert names.group_sequence("search", "pro", "search-prod-v001") is None
    assert names.group_sequence("search", "prod", "search-prod-v001") == 1
    assert names.group_sequence("search", "prod", "search-prod-v0011") is None
    assert names.group_sequence("sea", "prod", "search-prod-v001") is None
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert names.launch_template_name("a-b-v001", at) == "a-b-v001-20260102030405"
    assert names.image_name("search", "3.14", at) == "search-3.14-20260102030405"


def test_a_service_runs_alone(runtime: Runtime, admin_token: str) -> None:
    from klink.server import create_app

    app = create_app(runtime, ["metadata"])
    with TestClient(app, headers={"Authorization": f"Bearer {admin_token}"}) as alone:
        assert alone.get("/").json()["services"] == {"metadata": "/metadata"}
        assert alone.get("/metadata/applications").status_code == 200
        assert alone.get("/config/repos").status_code == 404
    with pytest.raises(InvalidInput) as info:
        create_app(runtime, ["nosuch"])
    assert info.value.field == "service"
