"""Promotion: deploy to prod the image that runs in poke now, with prod's own config; refused
when nothing runs in poke or the image is embargoed from prod; the lineage is recorded."""

from __future__ import annotations

from tests.deploy.conftest import FAST_PARAMS, IMG3
from tests.release.conftest import IMG1, IMG2, World, rule, summary


def two_envs(world: World) -> str:
    """search in poke (IMG2 running) and in prod (IMG1 running); prod's config commit."""
    world.app(env="poke")
    world.config(env="poke", params=FAST_PARAMS, props={"service.port": 8080, "where": "poke"})
    world.app(env="prod")
    commit = world.config(params=FAST_PARAMS, props={"service.port": 8080, "where": "prod"})
    for number, image in enumerate((IMG1, IMG2, IMG3), start=1):
        world.fake.add_image(image, "search", f"{number}.0", embargo="prod" if number == 3 else "")
    world.deploy(IMG1, env="prod")
    world.engine().drain()
    return commit


def test_promote_deploys_what_runs_in_poke_with_prods_config(world: World) -> None:
    commit = two_envs(world)
    source = world.deploy(IMG2, env="poke")
    world.engine().drain()
    response = world.client.post(
        "/deploy/search/prod/promote", json={"from": "poke", "message": "passed in poke"}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    lineage = {"env": "poke", "deployment": source, "group": "search-poke-v000", "image": IMG2}
    assert created["promotedFrom"] == lineage
    world.engine().drain()
    d = world.get(created["id"])
    assert d["status"] == "completed", d["error"]
    assert (d["image"], d["commit"], d["env"]) == (IMG2, commit, "prod")
    assert d["promotedFrom"] == lineage
    assert summary(world, d["id"])["promotedFrom"] == lineage
    user_data = d["newState"]["launch"]["user_data"]
    assert "where=prod" in user_data
    assert "where=poke" not in user_data


def test_promotes_from_names_the_source(world: World) -> None:
    two_envs(world)
    world.deploy(IMG2, env="poke")
    world.engine().drain()
    missing = world.client.post("/deploy/search/prod/promote", json={"message": "m"})
    assert missing.status_code == 400
    assert missing.json()["error"]["field"] == "from"
    rule(world, "promotesFrom", "poke")
    response = world.client.post("/deploy/search/prod/promote", json={"message": "m"})
    assert response.status_code == 201, response.text
    assert response.json()["promotedFrom"]["env"] == "poke"


def test_nothing_running_in_the_source_is_refused(world: World) -> None:
    two_envs(world)
    response = world.client.post(
        "/deploy/search/prod/promote", json={"from": "poke", "message": "m"}
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["field"], error["message"]) == (
        "from",
        "nothing runs in search/poke: there is no image to promote",
    )


def test_an_image_embargoed_from_the_target_is_refused(world: World) -> None:
    two_envs(world)
    world.deploy(IMG3, env="poke")
    world.engine().drain()
    response = world.client.post(
        "/deploy/search/prod/promote", json={"from": "poke", "message": "m"}
    )
    assert response.status_code == 409
    assert response.json()["error"]["field"] == "image"
    assert "embargoed from prod" in response.json()["error"]["message"]
    assert [d["env"] for d in world.ok("GET", "/deploy/deployments")["deployments"]] == [
        "poke",
        "prod",
    ]


def test_promote_to_itself_and_bad_names_are_refused(world: World) -> None:
    two_envs(world)
    same = world.client.post("/deploy/search/prod/promote", json={"from": "prod", "message": "m"})
    assert same.status_code == 400
    assert same.json()["error"]["field"] == "from"
    bad = world.client.post("/deploy/search/prod/promote", json={"from": "Po-ke", "message": "m"})
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "from"


def test_a_promotion_waits_for_prods_approvals(world: World) -> None:
    two_envs(world)
    world.deploy(IMG2, env="poke")
    world.engine().drain()
    rule(world, "approvals", {"required": 1})
    created = world.ok("POST", "/deploy/search/prod/promote", json={"from": "poke", "message": "m"})
    engine = world.engine()
    while engine.run_once():
        pass
    d = summary(world, created["id"])
    assert d["waitingFor"] == "approvals 0 of 1 from deployer on prod"
    assert world.groups() == ["search-prod-v000"]
