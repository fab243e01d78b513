"""The deploy API: bad input, auth, racing requests, preparation failures, history, dry run,
notifications, and the previous state discovered from the provider alone."""

from __future__ import annotations

import threading

import httpx
import pytest
import sqlalchemy as sa

from klink import store
from klink.deploy.tables import deploy_logs, deploy_slots, deploy_tasks, deployments
from tests.conftest import LiveServer
from tests.deploy.conftest import IMG1, IMG2, World, deployed, ready


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/deploy/Search/prod", {"image": IMG1, "message": "m"}, "app"),
        ("/deploy/search/pr-od", {"image": IMG1, "message": "m"}, "env"),
        ("/deploy/search/prod", {"image": IMG1}, "message"),
        ("/deploy/search/prod", {"image": IMG1, "message": ""}, "message"),
        ("/deploy/search/prod", {"message": "m"}, "image"),
        ("/deploy/search/prod", {"image": IMG1, "message": "m", "commit": "--output=x"}, "commit"),
        ("/deploy/search/prod/resize", {"min": 2, "max": 1, "desired": 1}, "desired"),
    ],
)
def test_bad_input_names_the_field(
    world: World, path: str, body: dict[str, object], field: str
) -> None:
    response = world.client.post(path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field
    assert world.client.get("/deploy/deployments").json()["deployments"] == []


def test_bad_query_parameters(world: World) -> None:
    bad = world.client.get("/deploy/deployments", params={"status": "done"})
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "status"
    assert world.client.get("/deploy/deployments/nope").status_code == 404
    assert world.client.post("/deploy/search/prod/pause").status_code == 404


def test_deployer_limited_to_an_env(world: World) -> None:
    token = world.ok(
        "POST", "/auth/tokens", json={"name": "ci", "role": "deployer", "envs": ["test"]}
    )
    headers = {"Authorization": f"Bearer {token['token']}"}
    refused = world.client.post(
        "/deploy/search/prod", json={"image": IMG1, "message": "m"}, headers=headers
    )
    assert refused.status_code == 403
    unlock = world.client.post("/deploy/search/test/unlock", headers=headers)
    assert unlock.status_code == 403  # unlock needs admin


@pytest.mark.slow
def test_exactly_one_of_racing_requests_wins(live_server: LiveServer) -> None:
    results: list[int] = []
    barrier = threading.Barrier(12)

    def post() -> None:
        with live_server.client() as http:
            barrier.wait()
            response = http.post("/deploy/race/prod", json={"image": IMG1, "message": "go"})
            results.append(response.status_code)

    threads = [threading.Thread(target=post) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [201] + [409] * 11
    with live_server.client() as http:
        listed = http.get("/deploy/deployments", params={"app": "race"}).json()["deployments"]
    assert len(listed) == 1


@pytest.mark.parametrize(
    ("metadata", "image_app", "embargo", "error"),
    [
        ({"blocked": {"user": "sec", "reason": "security review"}}, "search", "", "review"),
        ({}, "other", "", "belongs to 'other'"),
        ({}, "search", "prod,staging", "embargoed"),
    ],
)
def test_preparation_failures_are_invalid_and_free_the_slot(
    world: World, metadata: dict[str, str], image_app: str, embargo: str, error: str
) -> None:
    world.app(**metadata)
    world.config(params={"targetGroups": ["web"]})
    world.fake.add_image("img-0000000000aa", image_app, embargo=embargo)
    d = deployed(world, "img-0000000000aa")
    assert d["status"] == "invalid"
    assert error in d["error"]
    assert world.fake.count("create_group") == 0
    assert world.client.get("/deploy/in-progress").json()["deployments"] == []


def test_missing_image_is_invalid(world: World) -> None:
    ready(world)
    d = deployed(world, "img-00000000dead")
    assert d["status"] == "invalid"
    assert "does not exist" in d["error"]


def test_history_tasks_logs_stats_and_cleanup_shape(world: World) -> None:
    commit = ready(world)
    d1 = deployed(world, IMG1)
    d2 = deployed(world, IMG2)
    listed = world.ok(
        "GET", "/deploy/deployments", params={"app": "search", "status": "completed", "limit": 1}
    )["deployments"]
    assert [d["id"] for d in listed] == [d2["id"]]
    assert {"id", "app", "env", "image", "commit", "status"} <= set(listed[0])
    assert listed[0]["commit"] == commit
    tasks = world.ok("GET", f"/deploy/deployments/{d2['id']}/tasks")["tasks"]
    assert [t["action"] for t in tasks] == [s["name"] for s in d2["plan"]]
    assert all(t["status"] == "done" and t["startedAt"] and t["endedAt"] for t in tasks)
    waited = next(t for t in tasks if t["action"] == "wait_instances_in_service")
    assert waited["attempts"] > 1  # waited, rescheduled, not blocked
    lines = world.ok("GET", f"/deploy/deployments/{d2['id']}/logs")["logs"]
    waits = [x["message"] for x in lines if x["message"].startswith("wait_instances_in_service")]
    assert waits == [  # each change of a wait is logged, not each look
        "wait_instances_in_service: 0/1 instances in service",
        "wait_instances_in_service: 1 instances in service",
    ]
    first = world.ok("GET", f"/deploy/deployments/{d1['id']}/logs")
    assert first["logs"]
    assert first["next"] == first["logs"][-1]["id"]
    again = world.ok("GET", f"/deploy/deployments/{d1['id']}/logs", params={"since": first["next"]})
    assert again["logs"] == []
    stats = world.ok("GET", "/deploy/stats")
    assert stats["byOutcome"] == {"completed": 2}
    assert stats["byUser"] == {"admin": 2} or sum(stats["byUser"].values()) == 2
    assert stats["durationSeconds"]["p50"] is not None


def test_dry_run_shows_the_plan_and_changes_nothing(world: World) -> None:
    ready(world)
    deployed(world, IMG1)
    calls = len([c for c in world.fake.calls if c[0] != "poll"])
    dry = world.ok(
        "POST", "/deploy/search/prod", json={"image": IMG2, "message": "m", "dryRun": True}
    )
    assert dry["groups"] == {
        "create": "search-prod-v001",
        "enable": "search-prod-v001",
        "disable": "search-prod-v000",
        "remove": "search-prod-v000",
        "keep": None,
        "baseline": None,
    }
    assert "delete_old_group" in [s["name"] for s in dry["plan"]]
    assert len([c for c in world.fake.calls if c[0] != "poll"]) == calls
    assert len(world.ok("GET", "/deploy/deployments")["deployments"]) == 1


def test_notifications_sent_and_failures_never_fail(world: World) -> None:
    ready(world, deploymentRooms={"prod": ["#search"]})
    d = deployed(world, IMG1)
    assert d["status"] == "completed"
    bodies = world.notes.posted
    assert [url for url, _ in bodies] == [
        "https://relay.example.com/klink",
        "https://hooks.example.com/T/B/x",
    ] * 2
    start = bodies[0][1]
    assert start["room"] == "#search"
    assert start["event"]["event"] == "start"
    assert start["event"]["deployment"] == d["id"]
    assert bodies[1][1] == {"channel": "#search", "text": start["text"]}
    assert bodies[3][1]["text"].startswith("Deployed search/prod")
    world.notes.status = 500
    d2 = deployed(world, IMG2)
    assert d2["status"] == "completed"
    logs = world.ok("GET", f"/deploy/deployments/{d2['id']}/logs")["logs"]
    failures = [x["message"] for x in logs if "notification failed" in x["message"]]
    assert failures
    assert all("/T/B/x" not in f for f in failures)


def test_previous_state_comes_from_the_provider_after_wiping_the_database(world: World) -> None:
    ready(
        world,
        {
            "policies": [{"name": "up", "scalingAdjustment": 1}],
            "alarms": [
                {"name": "cpu", "metricName": "CPUUtilization", "threshold": 80, "policies": ["up"]}
            ],
        },
    )
    deployed(world, IMG1)
    with store.write(world.runtime.engine) as conn:
        for table in (deployments, deploy_tasks, deploy_logs, deploy_slots):
            conn.execute(sa.delete(table))
    d = deployed(world, IMG2)
    assert d["status"] == "completed"
    previous = d["previousState"]
    assert previous["name"] == "search-prod-v000"
    assert previous["image_id"] == IMG1
    assert previous["target_groups"] == ["web"]
    assert [p["name"] for p in previous["policies"]] == ["up"]
    assert [a["name"] for a in previous["alarms"]] == ["cpu"]
    assert previous["launch"]["user_data"].startswith("#cloud-config")


def test_boxes_and_images(world: World) -> None:
    ready(world, {"desiredCapacity": 2, "max": 2})
    deployed(world, IMG1)
    boxes = world.ok("GET", "/deploy/search/prod/boxes")
    assert boxes["group"] == "search-prod-v000"
    assert [b["state"] for b in boxes["boxes"]] == ["InService", "InService"]
    # Over weights each member of the balancer shows with its weight and health through it.
    [row] = boxes["groups"]
    assert (row["targetGroup"], row["name"], row["weight"]) == ("web", "search-prod-v000", 100)
    assert (row["healthy"], row["registered"], row["share"]) == (2, 2, 1.0)
    deployment_id = world.deploy(IMG2)
    engine = world.engine()
    for _ in range(200):
        if world.get(deployment_id)["current"] == "keep_warm":
            break
        if not engine.run_once():
            world.clock.sleep(1)
    assert world.get(deployment_id)["current"] == "keep_warm"
    warm = world.ok("GET", "/deploy/search/prod/boxes")
    assert warm["group"] == "search-prod-v001"
    weights = {r["name"]: (r["weight"], r["healthy"]) for r in warm["groups"]}
    assert weights == {"search-prod-v000": (0, 2), "search-prod-v001": (100, 2)}
    images = world.ok("GET", "/deploy/search/prod/images")["images"]
    assert images[0]["id"] == "img-000000000003"


def test_resize_current_group(world: World) -> None:
    ready(world, {"max": 3})
    deployed(world, IMG1)
    made = world.ok("POST", "/deploy/search/prod/resize", json={"min": 1, "max": 3, "desired": 3})
    # A resize is a one-step deployment: recorded, logged, holding the slot until it is done.
    busy = world.client.post("/deploy/search/prod", json={"image": IMG2, "message": "m"})
    assert busy.status_code == 409
    world.engine().drain()
    assert world.fake.describe_group("search-prod-v000").desired_capacity == 3
    record = world.get(made["id"])
    assert record["status"] == "completed", record["error"]
    assert record["kind"] == "resize"
    assert [s["name"] for s in record["plan"]][-2:] == ["resize_current_group", "complete"]
    logs = world.ok("GET", f"/deploy/deployments/{made['id']}/logs")["logs"]
    assert any("desired 1->3" in line["message"] for line in logs)
    # The resize is not a release: undo still starts from the last deployment (the first one
    # here, which cannot be undone), not from the resize.
    undo = world.client.post("/deploy/search/prod/undo", json={"dryRun": True})
    assert undo.status_code == 409
    assert made["id"] not in undo.json()["error"]["message"]
    assert "was the first of search/prod" in undo.json()["error"]["message"]


def test_unreachable_notifier_url_is_only_logged() -> None:
    from klink.notify import Dispatcher

    problems = Dispatcher(timeout=0.5).send(["http://127.0.0.1:9/hook", "ftp://x"], "hi", {})
    assert len(problems) == 2


def test_http_get_of_engine_is_not_needed_for_reads(world: World) -> None:
    assert httpx  # the API answers reads without any engine running
    assert world.client.get("/deploy/in-progress").status_code == 200


def test_history_filters_by_person(world: World) -> None:
    ready(world)
    deployed(world, IMG1)
    token = world.ok("POST", "/auth/tokens", json={"name": "alice", "role": "deployer"})["token"]
    response = world.client.post(
        "/deploy/search/prod",
        json={"image": IMG2, "message": "m"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    mine = world.ok("GET", "/deploy/deployments", params={"user": "alice"})["deployments"]
    assert [d["user"] for d in mine] == ["alice"]
    everyone = world.ok("GET", "/deploy/deployments")["deployments"]
    assert len(everyone) == 2
