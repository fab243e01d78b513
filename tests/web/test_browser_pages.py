"""Every page in a real chromium against the real platform: it renders what it should, with no
console error (a CSP violation is one), no uncaught script error and no failed request; signed
out, only the sign-in page shows; axe-core finds no serious or critical violation; and without
JavaScript every page still shows its content."""

from __future__ import annotations

import time
from typing import Any

import pytest
from itsdangerous import URLSafeTimedSerializer
from playwright.sync_api import Browser, BrowserContext

from tests.web.browser import Watched, axe_violations
from tests.web.conftest import Site, sign_in

pytestmark = pytest.mark.slow


def pages(site: Site) -> list[tuple[str, int, str]]:
    """(path, status, text the page must show)."""
    a, b = site.first["id"], site.second["id"]
    return [
        ("/", 200, "What runs where"),
        ("/apps/hello", 200, "team@example.com"),
        ("/apps/hello/dev", 200, "hello in dev"),
        ("/deployments", 200, "deploy 2.0"),
        ("/deployments?app=hello&status=completed", 200, "deploy 1.0"),
        (f"/deployments/{a}", 200, "Waits for: Nothing: it completed."),
        (f"/diff?a={a}&b={b}", 200, "What changed in hello in dev"),
        ("/images", 200, "Applications"),
        ("/images?app=hello", 200, "hello-2.0"),
        ("/images?app=hello", 200, "In use"),
        ("/infra", 200, "Drift"),
        ("/infra?app=hello&env=dev", 200, "Plan of hello in dev"),
        ("/audit", 200, "Audit log"),
        ("/apps/nosuch", 404, "nosuch"),
        ("/deployments/nosuch", 404, "nosuch"),
        ("/deployments?status=bogus", 400, "status"),
    ]


def expected_console(status: int, line: str) -> bool:
    # Chromium logs the error status of the document itself; that is the page working.
    return status >= 400 and f"status of {status}" in line


def test_every_page_renders_without_console_errors(visitor: BrowserContext, site: Site) -> None:
    page = visitor.new_page()
    watched = Watched(page)
    for path, status, text in pages(site):
        watched.errors.clear()
        response = page.goto(f"{site.url}{path}")
        assert response is not None, (path, response)
        assert response.status == status, (path, response)
        page.wait_for_load_state("networkidle")
        assert text in page.inner_text("main"), (path, page.inner_text("main")[:500])
        errors = [e for e in watched.errors if not expected_console(status, e)]
        assert errors == [], (path, errors)
    # The overview's health cells loaded through htmx (a JS-only part) and show real health.
    watched.errors.clear()
    page.goto(f"{site.url}/")
    page.wait_for_selector(".health.ok", timeout=10_000)
    assert "1/1 healthy" in page.inner_text(".grid")
    assert watched.errors == []


def test_the_application_page_shows_groups_and_commits(visitor: BrowserContext, site: Site) -> None:
    page = visitor.new_page()
    watched = Watched(page)
    page.goto(f"{site.url}/apps/hello")
    page.wait_for_selector("table.boxes", timeout=10_000)
    page.wait_for_selector("ul.commits", timeout=10_000)
    text = page.inner_text("main")
    assert "hello-dev-v001" in text  # the second deployment's group runs
    assert "e2e config" in text  # the config repo's commit
    assert "1 of 1 desired instances healthy" in page.inner_text("table.boxes")
    assert watched.errors == []


def test_signed_out_visitors_see_only_sign_in(anonymous: BrowserContext, site: Site) -> None:
    page = anonymous.new_page()
    for path, _status, text in pages(site):
        response = page.goto(f"{site.url}{path}")
        assert response is not None
        assert response.status == 200
        assert page.url.startswith(f"{site.url}/sign-in?next="), (path, page.url)
        main = page.inner_text("main")
        assert "Sign in to Klink" in main
        assert text not in main or text in ("status", "nosuch")
        assert page.locator("nav").count() == 0
    # The live streams need a session too.
    answer = anonymous.request.get(
        f"{site.url}/deployments/{site.first['id']}/events", max_redirects=0
    )
    assert answer.status == 303
    assert answer.headers["location"].startswith("/sign-in")


def _cookie(value: str, site: Site) -> list[Any]:
    return [{"name": "klink_session", "value": value, "url": site.url}]


def test_forged_and_expired_cookies_go_back_to_sign_in(chromium: Browser, site: Site) -> None:
    secret = (site.platform.home / "web-secret").read_text().strip()
    session = {"t": site.reader, "n": "viewer", "r": "reader"}

    class Past(URLSafeTimedSerializer):
        def make_signer(self, *args: Any, **kwargs: Any) -> Any:
            signer = super().make_signer(*args, **kwargs)
            signer.get_timestamp = lambda: int(time.time()) - 13 * 3600  # type: ignore[method-assign]
            return signer

    good = URLSafeTimedSerializer(secret, salt="klink-web-session").dumps(session)
    expired = Past(secret, salt="klink-web-session").dumps(session)
    forged = URLSafeTimedSerializer("not-the-secret", salt="klink-web-session").dumps(session)
    altered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    for value, lands in (
        (good, "/"),
        (expired, "/sign-in"),
        (forged, "/sign-in"),
        (altered, "/sign-in"),
    ):
        context = chromium.new_context()
        try:
            context.add_cookies(_cookie(value, site))
            page = context.new_page()
            page.goto(f"{site.url}/")
            assert page.url.split("?")[0] == f"{site.url}{lands}", (value, page.url)
        finally:
            context.close()


def test_a_revoked_token_signs_out(chromium: Browser, site: Site) -> None:
    token = site.platform.call("POST", "/auth/tokens", json={"name": "brief", "role": "reader"})
    context = chromium.new_context()
    try:
        sign_in(context, site, token["token"])
        page = context.new_page()
        page.goto(f"{site.url}/deployments")
        assert page.url == f"{site.url}/deployments"
        site.platform.call("DELETE", "/auth/tokens/brief")
        page.goto(f"{site.url}/deployments")
        assert page.url.startswith(f"{site.url}/sign-in"), page.url
    finally:
        context.close()


def test_sign_out(visitor: BrowserContext, site: Site) -> None:
    page = visitor.new_page()
    page.goto(f"{site.url}/")
    cookie = next(c for c in visitor.cookies() if c["name"] == "klink_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    with page.expect_navigation():
        page.click("text=Sign out")
    assert page.url == f"{site.url}/sign-in"
    assert [c for c in visitor.cookies() if c["name"] == "klink_session"] == []
    page.goto(f"{site.url}/")
    assert page.url.startswith(f"{site.url}/sign-in")


def test_accessibility(chromium: Browser, site: Site) -> None:
    # axe is injected as a script; the page's own CSP would (rightly) refuse it.
    context = chromium.new_context(bypass_csp=True)
    try:
        sign_in(context, site)
        page = context.new_page()
        found = {}
        for path, _status, _text in [*pages(site), ("/sign-in", 200, "")]:
            page.goto(f"{site.url}{path}")
            page.wait_for_load_state("networkidle")
            violations = axe_violations(page)
            if violations:
                found[path] = violations
        assert found == {}
    finally:
        context.close()


def test_pages_work_without_javascript(chromium: Browser, site: Site) -> None:
    context = chromium.new_context(java_script_enabled=False)
    try:
        sign_in(context, site)
        page = context.new_page()
        for path, status, text in pages(site):
            response = page.goto(f"{site.url}{path}")
            assert response is not None
            assert response.status == status
            assert text in page.inner_text("main"), path
        # What htmx would load lazily is a plain link, and its page shows it inline.
        page.goto(f"{site.url}/")
        page.click(".grid a.version")
        assert page.url == f"{site.url}/apps/hello/dev"
        assert "1 of 1 desired instances healthy" in page.inner_text("table.boxes")
        assert "2.0" in page.inner_text("main")
    finally:
        context.close()
