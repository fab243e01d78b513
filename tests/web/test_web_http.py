"""The web service through HTTP, in-process, over deployments run by the real engine (with the
FakeProvider where a cloud would be): what each page says, the session's rules, the read-only
routes, the security headers, the error pages, the SSE stream and ``GET /deploy/running``."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from starlette.testclient import TestClient

from klink.server import create_app
from klink.service.runtime import Runtime
from klink.web import live
from tests.deploy.conftest import IMG1, IMG2, IMG3, World, deployed, ready

BROWSER = {"Accept": "text/html"}


def signed_in(world: World, role: str = "reader") -> TestClient:
    token = world.ok("POST", "/auth/tokens", json={"name": f"web{role}", "role": role})["token"]
    client = TestClient(world.client.app, headers=BROWSER)
    answer = client.post("/sign-in", data={"token": token}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client


@pytest.fixture
def history(world: World) -> dict[str, Any]:
    """search in prod: 1.0 then 2.0 deployed, then 3.0 failed at the health gate."""
    ready(world, {"instanceHealthyAttempts": 2})
    first, second = deployed(world, IMG1), deployed(world, IMG2)
    world.fake.make_unhealthy(IMG3)
    failed = deployed(world, IMG3)
    assert (first["status"], second["status"], failed["status"]) == (
        "completed",
        "completed",
        "failed",
    )
    return {"first": first, "second": second, "failed": failed}


def test_running_is_the_newest_completed_deployment_and_follows_an_undo(
    world: World, history: dict[str, Any]
) -> None:
    running = world.ok("GET", "/deploy/running")["running"]
    assert [(r["app"], r["env"], r["image"], r["version"]) for r in running] == [
        ("search", "prod", IMG2, "2.0")
    ]
    assert running[0]["deployment"] == history["second"]["id"]  # not the failed 3.0
    assert running[0]["group"] == "search-prod-v001"
    # Undo the failed one: what runs is still 2.0 (its previous state), from that record.
    world.ok("POST", "/deploy/search/prod/undo", json={"message": "3.0 is broken"})
    world.engine().drain()
    (after,) = world.ok("GET", "/deploy/running")["running"]
    assert (after["deployment"], after["undo"]) == (history["failed"]["id"], True)
    assert (after["image"], after["version"], after["group"]) == (IMG2, "2.0", "search-prod-v001")
    assert world.ok("GET", "/deploy/running", params={"app": "other"})["running"] == []
    bad = world.client.get("/deploy/running", params={"app": "Bad-Name"})
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "app"


def test_after_undoing_a_completed_deployment_the_previous_version_runs(world: World) -> None:
    ready(world)
    deployed(world, IMG1)
    second = deployed(world, IMG2)
    world.ok("POST", "/deploy/search/prod/undo", json={"message": "back to 1.0"})
    world.engine().drain()
    (running,) = world.ok("GET", "/deploy/running", params={"app": "search"})["running"]
    assert (running["deployment"], running["undo"]) == (second["id"], True)
    assert (running["image"], running["version"], running["group"]) == (
        IMG1,
        "1.0",
        "search-prod-v000",
    )


def test_pages_show_what_runs_and_what_happened(world: World, history: dict[str, Any]) -> None:
    client = signed_in(world)
    first, second, failed = history["first"], history["second"], history["failed"]
    overview = client.get("/").text
    assert "img-000000000002" in overview
    assert ">2.0<" in overview
    assert f"/deployments/{failed['id']}" in overview  # failed keeps its slot: in progress
    app = client.get("/apps/search").text
    assert "team@example.com" in app
    assert "/apps/search/prod/part/groups" in app
    env = client.get("/apps/search/prod").text
    # The boxes API names the newest group: 3.0's, out of traffic, with its unhealthy instance.
    assert "search-prod-v002" in env
    assert "Unhealthy" in env
    # Each group's weight behind the balancer: 2.0's group takes it all, 3.0's none.
    traffic = env.split("Traffic by group", 1)[1].split("</table>", 1)[0]
    rows = [r for r in traffic.split("<tr>") if "<code>search-prod-" in r]
    weights = {r.split("<code>search-prod-")[1][:4]: r.split("</td><td>")[2] for r in rows}
    assert weights == {"v001": "100", "v002": "0"}
    assert "Recent deployments" in env
    assert "Version <strong>2.0</strong>" in env
    assert "Newest group (not yet the one that serves, <code>search-prod-v001</code>)" in env
    assert "change" in env  # the config repo's commit message
    page = client.get(f"/deployments/{failed['id']}").text
    assert "A person: it failed at wait_instances_healthy" in page
    assert "klink retry search prod" in page
    assert "klink undo search prod" in page
    # No control is offered: the page's only POST form is signing out.
    posts = re.findall(r'<form[^>]*method="post"[^>]*action="([^"]+)"', page)
    assert posts == ["/sign-out"]
    groups = client.get("/apps/search/prod/part/groups").text
    assert "search-prod-v002" in groups
    assert "0 of 1 desired instances healthy" in groups
    diff = client.get("/diff", params={"a": first["id"], "b": second["id"]}).text
    assert "img-000000000001" in diff
    assert "img-000000000002" in diff
    assert "The same config" in diff  # one commit for both
    history_page = client.get("/deployments", params={"status": "failed"}).text
    assert failed["id"][:12] in history_page
    assert first["id"][:12] not in history_page
    by_person = client.get("/deployments", params={"user": "nobody"}).text
    assert "0 deployments" in by_person
    assert "admin" in client.get("/deployments", params={"user": "admin"}).text


def test_the_session_cookie(world: World) -> None:
    token = world.ok("POST", "/auth/tokens", json={"name": "viewer", "role": "reader"})["token"]
    client = TestClient(world.client.app, headers=BROWSER)
    answer = client.post(
        "/sign-in", data={"token": token, "next": "/deployments"}, follow_redirects=False
    )
    assert answer.headers["location"] == "/deployments"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("klink_session=")
    for attribute in ("HttpOnly", "SameSite=strict", "Max-Age=43200", "Path=/"):
        assert attribute in cookie, cookie
    assert "Secure" not in cookie  # plain http on loopback
    wrong = client.post("/sign-in", data={"token": "klk_wrong"}, follow_redirects=False)
    assert wrong.status_code == 401
    assert "not valid" in wrong.text
    empty = client.post("/sign-in", data={"token": ""}, follow_redirects=False)
    assert empty.status_code == 400
    away = client.post(
        "/sign-in", data={"token": token, "next": "//evil.example/x"}, follow_redirects=False
    )
    assert away.headers["location"] == "/"
    foreign = client.post(
        "/sign-out", headers={"Origin": "http://evil.example"}, follow_redirects=False
    )
    assert foreign.status_code == 403
    out = client.post("/sign-out", follow_redirects=False)
    assert out.status_code == 303
    assert 'klink_session=""' in out.headers["set-cookie"]


def test_no_route_changes_anything(world: World) -> None:
    web = world.client.app.state.services["web"]
    routes = []
    for route in web.routes:  # FastAPI wraps each included router
        routes += getattr(getattr(route, "original_router", None), "routes", [route])
    paths = sorted({route.path for route in routes if hasattr(route, "methods")})
    assert "/deployments/{deployment_id}/events" in paths
    assert len(paths) > 12
    writes = sorted(
        (route.path, method)
        for route in routes
        for method in getattr(route, "methods", None) or ()
        if method not in ("GET", "HEAD")
    )
    assert writes == [("/sign-in", "POST"), ("/sign-out", "POST")]
    client = signed_in(world)
    for path in ("/", "/deployments", "/apps/search", "/images", "/audit"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert client.request(method, path).status_code == 405, (method, path)


def test_every_page_has_the_csp_and_no_inline_script_or_style(
    world: World, history: dict[str, Any]
) -> None:
    client = signed_in(world)
    a, b = history["first"]["id"], history["second"]["id"]
    paths = [
        "/",
        "/sign-in",
        "/apps/search",
        "/apps/search/prod",
        "/deployments",
        f"/deployments/{a}",
        f"/diff?a={a}&b={b}",
        "/images",
        "/images?app=search",
        "/infra",
        "/audit",
        "/apps/nosuch",
    ]
    for path in paths:
        answer = client.get(path)
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp, path
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", answer.text), path
        assert " style=" not in answer.text, path
        assert "<style" not in answer.text, path
        assert not re.search(r"<[^>]+\son[a-z]+=", answer.text), path


def test_error_pages(world: World, history: dict[str, Any]) -> None:
    client = signed_in(world)
    cases = [
        ("/apps/nosuch", 404, "nosuch"),
        ("/apps/search/nosuch", 404, "nosuch"),
        ("/apps/Bad", 404, "Bad"),
        ("/deployments/0123456789abcdef", 404, "0123456789abcdef"),
        ("/deployments/0123456789abcdef/events", 404, "0123456789abcdef"),
        ("/deployments?app=Bad", 400, "<code>app</code>"),
        ("/deployments?status=bogus", 400, "<code>status</code>"),
        ("/deployments?limit=many", 400, "<code>limit</code>"),
        ("/diff?a=&b=", 400, "<code>a</code>"),
        (f"/diff?a={history['first']['id']}&b=", 400, "<code>b</code>"),
        ("/images?app=nosuch", 404, "nosuch"),
        ("/no/such/page", 404, "Not found"),
    ]
    for path, status, text in cases:
        answer = client.get(path)
        assert answer.status_code == status, (path, answer.status_code)
        assert answer.headers["content-type"].startswith("text/html"), path
        assert text in answer.text, (path, answer.text[-800:])
        assert "Traceback" not in answer.text


def test_diff_refuses_two_app_envs(world: World, history: dict[str, Any]) -> None:
    world.app("other", "prod")
    world.config(
        "other",
        "prod",
        params={"healthCheckIntervalSeconds": 1, "targetGroups": ["web"]},
        props={"service.port": 8080},
    )
    world.fake.add_image("img-0000000000aa", "other", "9.0")
    other = deployed(world, "img-0000000000aa", app="other")
    client = signed_in(world)
    answer = client.get("/diff", params={"a": history["first"]["id"], "b": other["id"]})
    assert answer.status_code == 400
    assert "<code>b</code>" in answer.text


def test_signed_out_and_forged(world: World) -> None:
    client = TestClient(world.client.app, headers=BROWSER)
    for path in ("/", "/apps/search", "/deployments", "/audit", "/events"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/sign-in"), path
    client.cookies.set("klink_session", "eyJ0IjoieCJ9.forged.sig")
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 303
    fragment = client.get("/apps/a/b/part/health", headers={"HX-Request": "true"})
    assert fragment.status_code == 401
    assert fragment.headers["hx-redirect"] == "/sign-in"


def test_the_audit_page(world: World) -> None:
    """Until ``GET /auth/audit`` exists the page says so; once it does, an admin sees the log
    and a reader is told it needs an admin."""
    reader, admin = signed_in(world), signed_in(world, "admin")
    as_reader, as_admin = reader.get("/audit"), admin.get("/audit")
    assert as_reader.status_code == as_admin.status_code == 200
    if world.client.get("/auth/audit").status_code == 404:
        for answer in (as_reader, as_admin):
            assert "The audit log is not available on this server" in answer.text
    else:
        assert "needs an admin token" in as_reader.text
        assert '<table class="audit">' in as_admin.text


def test_a_final_deployments_stream_sends_it_then_done(
    world: World, history: dict[str, Any]
) -> None:
    client = signed_in(world)
    with client.stream("GET", f"/deployments/{history['second']['id']}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        body = "".join(stream.iter_text())
    events = re.findall(r"^event: (\w+)$", body, flags=re.M)
    assert events == ["deployment", "done"]
    assert "data: completed" in body
    assert "Nothing: it completed." in body


def test_event_framing() -> None:
    assert live.event("x", "a\nb") == b"event: x\ndata: a\ndata: b\n\n"
    assert live.event("done", "") == b"event: done\ndata: \n\n"


def test_the_web_runs_alone(runtime: Runtime) -> None:
    with TestClient(create_app(runtime, ["web"])) as alone:
        assert alone.get("/", follow_redirects=False).headers["location"] == "/sign-in?next=/"
        assert alone.get("/sign-in").status_code == 200
        assert alone.get("/metadata/applications").status_code == 404
        assert alone.get("/healthcheck").json()["name"] == "web"
    with TestClient(create_app(runtime)) as everything:
        # An API client that misses a prefix gets Klink's JSON error, a browser the 404 page.
        missed = everything.get("/deploi/deployments", headers={"Accept": "application/json"})
        assert missed.status_code == 404
        assert missed.json()["error"]["code"] == "not_found"
        page = everything.get("/deploi/deployments", headers=BROWSER)
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert everything.get("/metadata/ping").text == "pong"  # the API prefixes still win
        assert everything.get("/deploy/ping").text == "pong"
        assert everything.get("/static/htmx.min.js").status_code == 200


def test_a_stream_ends_when_its_token_is_revoked(world: World, history: dict[str, Any]) -> None:
    client = signed_in(world)  # the token "webreader"
    failed = history["failed"]["id"]  # failed is not final: its stream would go on
    seen: list[str] = []

    def follow() -> None:
        with client.stream("GET", f"/deployments/{failed}/events") as stream:
            for chunk in stream.iter_text():
                seen.append(chunk)
                if len(seen) == 1:
                    world.ok("DELETE", "/auth/tokens/webreader")

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    reader.join(timeout=20)
    assert not reader.is_alive(), "the stream went on after its token was revoked"
    assert "event: deployment" in seen[0]
    assert "event:" not in "".join(seen[1:])


def test_a_canarys_judgements_are_on_its_deployment_page(world: World) -> None:
    from klink.testing.fake_metric_source import FakeMetricSource

    params = {"strategy": "canary", "keepWarmSeconds": 0}
    ready(world, {**params, "canary": {"intervals": 2, "intervalSeconds": 60}})
    world.metrics = FakeMetricSource()
    deployed(world, IMG1)
    world.metrics.worse("search-prod-v001", "latency-p99", 0.1)
    failed = deployed(world, IMG2)
    assert failed["undo"], failed
    page = signed_in(world).get(f"/deployments/{failed['id']}").text
    section = page.split('<h2 id="canary">', 1)[1].split("</section>", 1)[0]
    assert section.startswith("Canary: fail")
    assert "<code>search-prod-v001</code> against baseline <code>search-prod-v002</code>" in section
    assert "1 of 2 intervals of 60 s judged" in section
    rows = {
        row.split("</th>", 1)[0]: row.rsplit("<td>", 1)[1].split("</td>", 1)[0]
        for row in section.split('<th scope="row">')[1:]
    }
    assert rows == {"error-rate (critical)": "pass", "latency-p50": "pass", "latency-p99": "fail"}
