"""The same store code on PostgreSQL: migrations, tokens, metadata with history."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from klink import store
from klink.server import create_app
from klink.service.runtime import Runtime
from tests.conftest import make_settings

pytestmark = pytest.mark.postgres


def test_metadata_service_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", KLINK_DATABASE_URL=postgres_url)
    runtime = Runtime.open(settings)
    try:
        assert runtime.engine.dialect.name == "postgresql"
        # Migrating again is a no-op.
        store.migrate(runtime.engine)
        token = settings.admin_token_path.read_text().strip()
        with TestClient(create_app(runtime), headers={"Authorization": f"Bearer {token}"}) as c:
            assert (
                c.put(
                    "/metadata/applications/search", json={"metadata": {"contact": "a@b.c"}}
                ).status_code
                == 201
            )
            assert (
                c.put("/metadata/applications/search/tier", json={"value": [1, 2]}).status_code
                == 200
            )
            assert c.get("/metadata/applications", params={"where": "tier=[1,2]"}).json() == {
                "applications": ["search"]
            }
            history = c.get("/metadata/applications/search/history").json()["history"]
            assert [h["key"] for h in history] == ["tier", None]
            assert history[0]["at"].endswith("+00:00")
            bad = c.put("/metadata/applications/search/tier", json={"nope": 1})
            assert bad.status_code == 400
        with runtime.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert {"applications", "environments", "metadata_history", "tokens"} <= tables
    finally:
        runtime.close()
