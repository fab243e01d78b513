"""Image cleanup and delete-image: the policy as a table, then against the real local cloud."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from klink.bake.cleanup import decide, images_of_deployments
from klink.providers import base
from klink.providers.local import control
from klink.providers.local.images import ImageStore
from klink.providers.local.provider import LocalProvider
from tests.bake.conftest import hello_app, put_env, stream
from tests.build.conftest import StartServer


def _images(count: int) -> list[base.Image]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        base.Image(f"img-{i:012x}", f"a-1.0.{i}", "available", start - timedelta(hours=i))
        for i in range(count)
    ]  # newest first


@pytest.mark.parametrize(
    ("count", "keep", "in_use", "removed"),
    [
        (0, 5, set(), ()),
        (3, 5, set(), ()),
        (6, 5, set(), ("img-000000000005",)),
        (6, 5, {"img-000000000005"}, ()),
        (4, 1, {"img-000000000003"}, ("img-000000000001", "img-000000000002")),
        (3, 0, set(), ("img-000000000000", "img-000000000001", "img-000000000002")),
        (3, 1, {"img-999999999999"}, ("img-000000000001", "img-000000000002")),
    ],
)
def test_decide(count: int, keep: int, in_use: set[str], removed: tuple[str, ...]) -> None:
    images = _images(count)
    decision = decide(images, keep, in_use)
    assert decision.remove == removed
    assert set(decision.keep) | set(decision.remove) == {i.id for i in images}
    assert decide(images, keep, in_use) == decision


def test_last_two_completed_deployments_of_each_env_are_in_use() -> None:
    deployments = [  # newest first, as the deploy service lists them
        {"env": "prod", "image": "ami-3"},
        {"env": "test", "image": "ami-3"},
        {"env": "prod", "image": "ami-2"},
        {"env": "prod", "image": "ami-1"},
        {"env": "test", "image": "ami-0"},
        {"env": "test", "image": "ami-00"},
    ]
    assert images_of_deployments(deployments) == {"ami-3", "ami-2", "ami-0"}
    assert images_of_deployments([]) == set()


@pytest.fixture
def cloud_home(home: Path) -> Iterator[Path]:
    yield home
    control.stop_all(home, grace=2.0)


def _bake_versions(http: Any, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        _, built = stream(http, "POST", "/build/builds/hello")
        _, baked = stream(http, "POST", f"/bake/images/hello/{built['result']['version']}")
        ids.append(baked["result"]["image"])
    return ids


@pytest.mark.slow
def test_cleanup_keeps_recent_and_in_use_images(
    start_server: StartServer, cloud_home: Path, tmp_path: Path
) -> None:
    server = start_server(KLINK_IMAGES_KEEP="1")
    store = ImageStore(cloud_home)
    with server.client() as http:
        put_env(http, "dev", provider="local")
        hello_app(http, tmp_path)
        stream(http, "POST", "/bake/base", json={})
        oldest, middle, newest = _bake_versions(http, 3)

        cloud = LocalProvider.from_environment(
            "dev", {"provider": "local"}, SimpleNamespace(home=cloud_home)
        )
        try:
            cloud.create_launch_template(
                base.LaunchTemplateSpec(
                    name="hello-dev-v000-20260101000000",
                    image_id=oldest,
                    instance_type="local",
                    user_data="#cloud-config\n{}\n",
                )
            )
            cloud.create_group(
                base.GroupSpec(
                    name="hello-dev-v000",
                    launch_template="hello-dev-v000-20260101000000",
                    min_size=0,
                    max_size=1,
                    desired_capacity=0,
                )
            )
            refused = http.delete(f"/bake/images/hello/{oldest}")
            assert refused.status_code == 409
            assert "in use" in refused.json()["error"]["message"]

            report = http.post("/bake/clean/hello").json()
            assert report["targets"]["local"]["removed"] == [middle]
            assert sorted(report["targets"]["local"]["kept"]) == sorted([newest, oldest])
            assert {i.id for i in store.list("hello")} == {newest, oldest}
            again = http.post("/bake/clean/hello").json()
            assert again["targets"]["local"]["removed"] == []

            cloud.delete_group("hello-dev-v000")
            for _ in range(100):
                if not cloud.group_exists("hello-dev-v000"):
                    break
                time.sleep(0.05)
            assert http.delete(f"/bake/images/hello/{oldest}").status_code == 204
            assert [i.id for i in store.list("hello")] == [newest]
            assert http.delete(f"/bake/images/hello/{oldest}").status_code == 404
        finally:
            cloud.close()


@pytest.mark.slow
def test_without_the_deploy_service_nothing_is_removed(
    start_server: StartServer, cloud_home: Path, tmp_path: Path
) -> None:
    services = ["auth", "metadata", "build", "bake"]
    server = start_server(services, KLINK_IMAGES_KEEP="0")
    store = ImageStore(cloud_home)
    with server.client() as http:
        put_env(http, "dev", provider="local")
        hello_app(http, tmp_path)
        stream(http, "POST", "/bake/base", json={})
        (image,) = _bake_versions(http, 1)
        report = http.post("/bake/clean/hello").json()["targets"]["local"]
        assert report["removed"] == []
        assert report["kept"] == [image]
        assert "deploy service" in report["skipped"]
        refused = http.delete(f"/bake/images/hello/{image}")
        assert refused.status_code == 409
        assert "cannot tell" in refused.json()["error"]["message"]
        assert [i.id for i in store.list("hello")] == [image]
