"""The internal service token is out of the API's reach; healthchecks name what each service
needs (a broken service-to-service call included) and are cached for a few seconds."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from starlette.testclient import TestClient

from klink import store
from klink.auth.tables import tokens
from klink.service import HealthCheck, make_service
from klink.service.runtime import INTERNAL_TOKEN_NAME, Runtime
from tests.conftest import LiveServer, free_port, make_settings, serving


def _names(body: dict[str, object]) -> dict[str, bool]:
    deps = body["dependencies"]
    assert isinstance(deps, list)
    return {d["name"]: d["success"] for d in deps}


def test_the_internal_token_cannot_be_deleted_or_taken(live_server: LiveServer) -> None:
    with live_server.client() as http:
        refused = http.delete(f"/auth/tokens/{INTERNAL_TOKEN_NAME}")
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["field"] == "name"
        taken = http.post("/auth/tokens", json={"name": INTERNAL_TOKEN_NAME, "role": "admin"})
        assert taken.status_code in (400, 409), taken.text
        listed = http.get("/auth/tokens").json()["tokens"]
        assert INTERNAL_TOKEN_NAME in [t["name"] for t in listed]
        # Service-to-service calls still work: config asks metadata about the app and env.
        assert http.put("/metadata/environments/poke", json={"metadata": {"provider": "local"}})
        assert http.put("/metadata/applications/search", json={"metadata": {"contact": "a@b.c"}})
        assert http.post("/config/repos/search/poke").status_code == 201


def test_a_revoked_internal_token_fails_the_healthchecks_naming_it(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", free_port(), KLINK_HEALTH_CACHE_SECONDS="0")
    with serving(settings) as live, live.client() as http:
        for service in ("metadata", "config", "auth"):
            health = http.get(f"/{service}/healthcheck")
            assert health.status_code == 200, health.text
        assert _names(http.get("/config/healthcheck").json()) == {
            "database": True,
            "internal-token": True,
            "git": True,
            "metadata": True,
        }
        # Deleted behind the API's back (a restore of an old database, a hand-made DELETE).
        with store.write(live.runtime.engine) as conn:
            conn.execute(tokens.delete().where(tokens.c.name == INTERNAL_TOKEN_NAME))
        for service in ("metadata", "config", "build", "deploy"):
            health = http.get(f"/{service}/healthcheck")
            assert health.status_code == 500, (service, health.text)
            names = _names(health.json())
            assert names["internal-token"] is False
            assert names["database"] is True


def test_healthchecks_name_the_services_they_call(live_server: LiveServer) -> None:
    with live_server.client() as http:
        expected = {
            "auth": set(),
            "metadata": {"config"},
            "config": {"metadata", "git"},
            "build": {"metadata", "git"},
            "bake": {"metadata", "build", "deploy"},
            "infra": {"metadata", "config"},
            "deploy": {"metadata", "config"},
        }
        for service, needs in expected.items():
            names = set(_names(http.get(f"/{service}/healthcheck").json()))
            assert {"database", "internal-token"} | needs <= names, (service, names)


def test_an_unreachable_service_fails_the_healthcheck_of_its_callers(tmp_path: Path) -> None:
    # The split deployment: metadata runs elsewhere, and that elsewhere is down.
    settings = make_settings(
        tmp_path / "home",
        free_port(),
        KLINK_HEALTH_CACHE_SECONDS="0",
        KLINK_METADATA_URL=f"http://127.0.0.1:{free_port()}/metadata",
    )
    with serving(settings) as live, live.client() as http:
        health = http.get("/config/healthcheck")
        assert health.status_code == 500
        assert _names(health.json())["metadata"] is False
        assert http.get("/auth/healthcheck").status_code == 200


def test_checks_are_cached_for_a_few_seconds(runtime: Runtime) -> None:
    calls: list[int] = []

    def check() -> bool:
        calls.append(1)
        return True

    app = make_service("probe", runtime, [], checks=[HealthCheck("counted", check)])
    with TestClient(app) as c:
        for _ in range(5):
            assert c.get("/healthcheck").status_code == 200
    assert len(calls) == 1
    assert runtime.settings.health_cache_seconds == 5.0


def test_the_internal_token_row_is_untouched_by_a_refused_delete(live_server: LiveServer) -> None:
    with live_server.runtime.engine.connect() as conn:
        before = conn.execute(sa.select(tokens).where(tokens.c.name == INTERNAL_TOKEN_NAME)).all()
    with live_server.client() as http:
        assert http.delete(f"/auth/tokens/{INTERNAL_TOKEN_NAME}").status_code == 403
    with live_server.runtime.engine.connect() as conn:
        after = conn.execute(sa.select(tokens).where(tokens.c.name == INTERNAL_TOKEN_NAME)).all()
    assert before == after
    assert len(after) == 1


def test_a_local_cloud_daemon_that_does_not_answer_fails_deploy_health(tmp_path: Path) -> None:
    import json
    import os

    from klink.providers.local import processes

    settings = make_settings(tmp_path / "home", free_port(), KLINK_HEALTH_CACHE_SECONDS="0")
    with serving(settings) as live, live.client() as http:
        assert _names(http.get("/deploy/healthcheck").json())["local-cloud"] is True
        body = {"name": "poke", "metadata": {"provider": "local"}}
        assert http.post("/metadata/environments", json=body).status_code == 201
        # A daemon recorded as running (this very process stands in for it) that answers
        # nothing on its URL: hung, or its port taken by something else.
        info = settings.home / "local" / "daemon.json"
        info.parent.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        record = {"url": f"http://127.0.0.1:{free_port()}", "pid": pid}
        record["started"] = processes.start_time(pid)  # type: ignore[assignment]
        info.write_text(json.dumps(record))
        for service in ("deploy", "infra"):
            health = http.get(f"/{service}/healthcheck")
            assert health.status_code == 500
            assert _names(health.json())["local-cloud"] is False
        assert http.get("/metadata/healthcheck").status_code == 200
