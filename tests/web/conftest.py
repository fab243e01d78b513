"""The web UI's test world: the whole platform (``klink serve`` with the engine, the local cloud,
HAProxy) in child processes, with ``hello`` deployed twice for real, and a real chromium.

The platform and its deployments are shared by a module's tests (a real local deployment takes
seconds); each test gets its own browser context, so cookies never leak between tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from tests.deploy.conftest import world  # noqa: F401 - the deploy tests' world, for tests here
from tests.e2e.platform import Platform, local_hello
from tests.local.conftest import make_image
from tests.web.browser import ARGS, CHROMIUM

PARAMS = {"desiredCapacity": 1, "max": 1, "instanceHealthyAttempts": 20}


@dataclass
class Site:
    platform: Platform
    url: str
    reader: str  # a reader token
    first: dict[str, Any]  # completed deployments of hello in dev, oldest first
    second: dict[str, Any]
    images: Path  # where test images are staged

    def deploy(self, version: str) -> str:
        image = make_image(self.platform.home, version, self.images)
        return self.platform.deploy("hello", "dev", image.id, f"deploy {version}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("web")
    platform = Platform(root)
    try:
        platform.start()
        local_hello(platform, PARAMS)
        images = root / "images"
        completed = []
        for version in ("1.0", "2.0"):
            image = make_image(platform.home, version, images)
            record = platform.wait(platform.deploy("hello", "dev", image.id, f"deploy {version}"))
            assert record["status"] == "completed", record
            completed.append(record)
        answer = platform.call("POST", "/auth/tokens", json={"name": "viewer", "role": "reader"})
        yield Site(platform, platform.url, answer["token"], completed[0], completed[1], images)
    finally:
        platform.close()
    assert platform.non_loopback_connects() == []


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no chromium at {CHROMIUM}: scripts/test installs it (apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(context: BrowserContext, site: Site, token: str | None = None) -> None:
    """Sign in through the sign-in form, as a person would."""
    page = context.new_page()
    page.goto(f"{site.url}/sign-in")
    page.fill("#token", token or site.reader)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == f"{site.url}/", page.url
    page.close()


@pytest.fixture
def visitor(chromium: Browser, site: Site) -> Iterator[BrowserContext]:
    """A browser context signed in with a reader token."""
    context = chromium.new_context()
    sign_in(context, site)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def anonymous(chromium: Browser) -> Iterator[BrowserContext]:
    context = chromium.new_context()
    try:
        yield context
    finally:
        context.close()
