"""The native local baker end to end: build, base bake, service bake, an instance serving it."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from klink.providers import base
from klink.providers.local import control
from klink.providers.local.images import ImageStore
from klink.providers.local.provider import LocalProvider
from tests.bake.conftest import hello_app, put_env, stream
from tests.build.conftest import StartServer
from tests.conftest import free_port

pytestmark = pytest.mark.slow


def _bake(http: Any, app: str, version: str, **body: Any) -> dict[str, Any]:
    _, final = stream(http, "POST", f"/bake/images/{app}/{version}", json=body)
    return final


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())


def test_base_then_service_bake_then_an_instance_serves_the_app(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server()
    store = ImageStore(server.runtime.settings.home)
    with server.client() as http:
        put_env(http, "dev", provider="local")
        hello_app(
            http,
            tmp_path,
            bakeCommands=["echo baked {{version}} > opt/hello/BAKED", "echo hello from bake"],
            healthcheck={"path": "/healthcheck"},
        )
        _, built = stream(http, "POST", "/build/builds/hello")
        version = built["result"]["version"]
        assert version == "1.0.1"

        # No base image yet: a clear 404 before anything starts.
        early = http.post(f"/bake/images/hello/{version}", json={})
        assert early.status_code == 404
        assert "bake-base" in early.json()["error"]["message"]

        lines, based = stream(http, "POST", "/bake/base", json={"target": "local"})
        base_id = based["result"]["image"]
        base_image = store.describe(base_id)
        assert base_image.tags[base.TAG_ROLE] == "base"
        base_root = store.root(base_id)
        assert (base_root / "etc" / "klink-base").read_text().startswith("klink base image")
        assert {p.name for p in base_root.iterdir()} >= {"etc", "opt", "var"}

        dry = http.post(f"/bake/images/hello/{version}", json={"dry_run": True})
        assert dry.status_code == 200
        assert dry.json()["plan"]["base_image"] == base_id
        assert dry.json()["plan"]["bake_commands"][0] == f"echo baked {version} > opt/hello/BAKED"
        assert store.list("hello") == []

        lines, baked = stream(
            http, "POST", f"/bake/images/hello/{version}", json={"embargo": ["prod", "stage"]}
        )
        assert "hello from bake" in lines
        result = baked["result"]
        assert result["target"] == "local"
        image = store.describe(result["image"])
        assert image.name.startswith(f"hello-{version}-")
        assert image.tags[base.TAG_APP] == "hello"
        assert image.tags[base.TAG_VERSION] == version
        assert image.tags[base.TAG_ARTIFACT_SHA256] == built["result"]["sha256"]
        assert image.tags[base.TAG_BASE_IMAGE] == base_id
        assert image.embargo == ("prod", "stage")
        manifest = store.manifest(image.id)
        assert manifest["start_command"] == "cd opt/hello && exec python3 hello.py"
        assert manifest["health_path"] == "/healthcheck"
        root = store.root(image.id)
        assert (root / "opt" / "hello" / "BAKED").read_text() == f"baked {version}\n"
        assert (root / "etc" / "klink-base").stat().st_ino == (
            base_root / "etc" / "klink-base"
        ).stat().st_ino  # linked, not copied
        assert not os.access(root / "opt" / "hello" / "hello.py", os.W_OK) or os.getuid() == 0
        assert (root / "opt" / "hello" / "hello.py").stat().st_mode & 0o222 == 0
        assert not (base_root / "opt" / "hello").exists()
        assert not (root / ".klink-bake").exists()

        listed = http.get("/bake/images/hello").json()["images"]
        assert [i["id"] for i in listed] == [image.id]
        assert listed[0]["embargo"] == ["prod", "stage"]

    # An instance of the baked image, launched by the real local cloud, serves the app.
    port = free_port()
    user_data = "#cloud-config\n" + yaml.safe_dump(
        {"write_files": [{"path": "/etc/hello.properties", "content": f"service.port={port}\n"}]}
    )
    cloud = LocalProvider.from_environment(
        "dev", {"provider": "local"}, SimpleNamespace(home=server.runtime.settings.home)
    )
    try:
        cloud.create_launch_template(
            base.LaunchTemplateSpec(
                name="hello-dev-v000-20261129000000",
                image_id=image.id,
                instance_type="local",
                user_data=user_data,
            )
        )
        cloud.create_group(
            base.GroupSpec(
                name="hello-dev-v000",
                launch_template="hello-dev-v000-20261129000000",
                min_size=1,
                max_size=1,
                desired_capacity=1,
            )
        )
        deadline = time.monotonic() + 30
        body = None
        while body is None and time.monotonic() < deadline:
            instances = cloud.describe_group("hello-dev-v000").instances
            for instance in instances:
                if instance.private_ip and instance.private_ip.startswith("127."):
                    with contextlib.suppress(OSError):
                        body = _get_json(f"http://{instance.private_ip}:{port}/healthcheck")
            if body is None:
                time.sleep(0.1)
        assert body is not None, "the instance never answered"
        assert body["version"] == version
        assert instances[0].image_id == image.id
    finally:
        cloud.close()
        control.stop_all(server.runtime.settings.home, grace=2.0)


def test_failed_bake_leaves_nothing_and_unknown_things_are_4xx(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server()
    store = ImageStore(server.runtime.settings.home)
    with server.client() as http:
        put_env(http, "dev", provider="local")
        hello_app(http, tmp_path, bakeCommands=["echo about to fail", "exit 4"])
        _, built = stream(http, "POST", "/build/builds/hello")
        version = built["result"]["version"]
        stream(http, "POST", "/bake/base", json={})
        lines, final = stream(http, "POST", f"/bake/images/hello/{version}", json={})
        assert "about to fail" in lines
        assert final["error"]["code"] == "command_failed"
        assert "about to fail" in final["error"]["output"]
        assert store.list("hello") == []
        leftovers = [p.name for p in store.dir.iterdir() if not p.name.startswith("img-")]
        assert leftovers == []
        work = server.runtime.settings.home / "bake" / "work"
        assert not work.exists() or list(work.iterdir()) == []

        missing = http.post("/bake/images/hello/9.9.9", json={})
        assert missing.status_code == 404
        bad_target = http.post(f"/bake/images/hello/{version}", json={"target": "aws:mars-1"})
        assert bad_target.status_code == 400
        assert bad_target.json()["error"]["field"] == "target"
        assert "local" in bad_target.json()["error"]["message"]
        bad_embargo = http.post(f"/bake/images/hello/{version}", json={"embargo": ["Prod!"]})
        assert bad_embargo.status_code == 400
        assert bad_embargo.json()["error"]["field"] == "embargo"
        put_env(http, "cloud", provider="aws", region="eu-west-1")
        ambiguous = http.post(f"/bake/images/hello/{version}", json={})
        assert ambiguous.status_code == 400
        assert "aws:eu-west-1, local" in ambiguous.json()["error"]["message"]


def test_identical_bakes_coalesce_and_different_apps_bake_concurrently(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server()
    store = ImageStore(server.runtime.settings.home)
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    # Each bake records that it started, then waits (bounded) for the test to release it.
    hold = (
        f"echo run >> {meeting}/started-$KLINK_APP; i=0; "
        f"while [ ! -e {meeting}/release ]; do "
        "i=$((i+1)); [ $i -lt 600 ] || exit 9; sleep 0.05; done"
    )
    with server.client() as http:
        put_env(http, "dev", provider="local")
        for app in ("hello", "hola"):
            hello_app(http, tmp_path, name=app, bakeCommands=[hold])
            stream(http, "POST", f"/build/builds/{app}")
        stream(http, "POST", "/bake/base", json={})
    results: dict[str, list[dict[str, Any]]] = {"hello": [], "hola": []}
    joined: list[str] = []

    def bake(app: str) -> None:
        with server.client() as http:
            path = f"/bake/images/{app}/1.0.1"
            with http.stream("POST", path, json={}, timeout=60) as response:
                joined.append(response.headers["x-klink-joined"])
                events = [json.loads(line) for line in response.iter_lines() if line.strip()]
            results[app].append(events[-1])

    threads = [threading.Thread(target=bake, args=(app,)) for app in ("hello", "hello", "hola")]
    for thread in threads:
        thread.start()
    started = {app: meeting / f"started-{app}" for app in ("hello", "hola")}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (
        len(joined) == 3 and all(p.exists() for p in started.values())
    ):
        time.sleep(0.05)
    # Both apps are baking at the same time, and the second hello request joined the first.
    assert all(p.exists() for p in started.values())
    assert sorted(joined) == ["0", "0", "1"]
    (meeting / "release").touch()
    for thread in threads:
        thread.join(timeout=60)
    assert started["hello"].read_text() == "run\n"
    hello_ids = {r["result"]["image"] for r in results["hello"]}
    assert len(results["hello"]) == 2
    assert len(hello_ids) == 1, results
    assert [i.id for i in store.list("hello")] == list(hello_ids)
    assert "result" in results["hola"][0], results["hola"]
    assert len(store.list("hola")) == 1


def test_scheduled_work_bakes_bases_and_cleans(start_server: StartServer, tmp_path: Path) -> None:
    """What the schedule runs: a base bake on every target, then cleanup of every app."""
    from klink.bake.inventory import Inventory
    from klink.bake.service import BakeService

    server = start_server(["auth", "metadata", "build", "bake"], KLINK_IMAGES_KEEP="0")
    store = ImageStore(server.runtime.settings.home)
    with server.client() as http:
        put_env(http, "dev", provider="local")
        hello_app(http, tmp_path)
        service = BakeService(server.runtime)
        service.bake_all_bases()
        (base_image,) = [i for i in store.list(klink_only=False) if i.app is None]
        assert base_image.tags[base.TAG_ROLE] == "base"
        _, built = stream(http, "POST", "/build/builds/hello")
        _, baked = stream(http, "POST", f"/bake/images/hello/{built['result']['version']}")
    service.bake_all_bases()
    service.bake_all_bases()
    bases = [i.id for i in store.list(klink_only=False) if i.app is None]  # newest first
    assert len(bases) == 3
    assert bases[-1] == base_image.id
    # No deploy service here: use cannot be told, so the app's images are all kept. Base images
    # go unless newest or the base of an image that exists.
    Inventory(service).clean_all()
    assert [i.id for i in store.list("hello")] == [baked["result"]["image"]]
    remaining = [i.id for i in store.list(klink_only=False) if i.app is None]
    assert remaining == [bases[0], base_image.id]


def test_an_artifact_that_does_not_match_its_checksum_makes_no_image(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server(["auth", "metadata", "build", "bake"])
    store = ImageStore(server.runtime.settings.home)
    with server.client() as http:
        put_env(http, "dev", provider="local")
        hello_app(http, tmp_path)
        _, built = stream(http, "POST", "/build/builds/hello")
        version = built["result"]["version"]
        stream(http, "POST", "/bake/base", json={})
        # The stored file changes behind the store's back (disk corruption, tampering).
        folder = server.runtime.settings.home / "artifacts" / "hello" / version
        stored = folder / f"hello-{version}.tar.gz"
        tampered = stored.read_bytes() + b"\0" * 1024
        stored.write_bytes(tampered)
        _, final = stream(http, "POST", f"/bake/images/hello/{version}", json={})
    assert final["error"]["field"] == "sha256"
    assert built["result"]["sha256"] in final["error"]["message"]
    assert store.list("hello") == []
    assert [p.name for p in store.dir.iterdir() if not p.name.startswith("img-")] == []
