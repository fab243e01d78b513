"""The live views in a real chromium while a real local deployment runs (klink serve with its
engine, real instances behind HAProxy): the overview shows the deployment start and end, and
the deployment's page moves through its actions, shows the pause it stops at, and after a
resume from outside (the API, as the CLI does) goes on to ``completed``, all without a reload.

How fast each update arrives (≤ 0.5 s after the action is persisted) is measured in
``bench/web_pages.py``, not asserted here; this test allows seconds so that a loaded machine
cannot make it fail.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.e2e.platform import push_config
from tests.web.browser import Watched
from tests.web.conftest import PARAMS, Site

pytestmark = pytest.mark.slow


def mark(page: Page) -> None:
    """A value that lives as long as the document: gone if the page reloads."""
    page.evaluate("() => { window.klinkTestMark = 'same document'; }")


def same_document(page: Page) -> bool:
    return bool(page.evaluate("() => window.klinkTestMark === 'same document'"))


def test_live_views_follow_a_real_deployment(visitor: BrowserContext, site: Site) -> None:
    overview, deployment = visitor.new_page(), visitor.new_page()
    watched_overview, watched_deployment = Watched(overview), Watched(deployment)
    health_loads: list[str] = []
    overview.on(
        "request", lambda r: health_loads.append(r.url) if "/part/health" in r.url else None
    )
    overview.goto(f"{site.url}/")
    overview.wait_for_load_state("networkidle")
    mark(overview)
    assert len(health_loads) == 1
    assert "No deployment in progress." in overview.inner_text("#board")

    # It pauses after its instances are healthy, until resumed from outside (as with the CLI).
    push_config(
        site.platform,
        "hello",
        "dev",
        {
            "deployment-params.json": {
                "healthCheckIntervalSeconds": 0.5,
                "targetGroups": ["hello"],
                **PARAMS,
                "pauseAfterInstancesHealthy": True,
            }
        },
    )
    deployment_id = site.deploy("3.0")
    # The overview shows it in progress by itself, with a link to its page.
    link = overview.locator(f"#board a[href='/deployments/{deployment_id}']").first
    link.wait_for(timeout=15_000)
    assert same_document(overview)

    deployment.goto(f"{site.url}/deployments/{deployment_id}")
    mark(deployment)
    seen: list[tuple[str, int]] = []
    resumed = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = deployment.inner_text("#live .status")
        cursor = int(deployment.get_attribute("#live progress", "value") or 0)
        if not seen or seen[-1] != (status, cursor):
            seen.append((status, cursor))
        if status == "paused" and not resumed:
            assert "klink resume hello dev" in deployment.inner_text("#live")
            site.platform.call("POST", "/deploy/hello/dev/resume")
            resumed = True
        if status == "completed":
            break
        time.sleep(0.05)
    assert seen[-1][0] == "completed", seen
    statuses = [s for s, _c in seen]
    assert "paused" in statuses, seen
    assert statuses.index("paused") < statuses.index("completed"), seen
    assert same_document(deployment), "the deployment page reloaded"
    # It moved through several actions on its own, in order.
    cursors = [c for _s, c in seen]
    assert len(set(cursors)) >= 3, seen
    assert cursors == sorted(cursors), seen
    text = deployment.inner_text("#live")
    assert "Waits for: Nothing: it completed." in text
    assert "wait_instances_healthy" in text
    assert "done" in deployment.inner_text("table.plan")

    # The overview, never reloaded, now shows 3.0 running and nothing in progress.
    overview.wait_for_function(
        "() => document.querySelector('#board').innerText.includes('No deployment in progress.')",
        timeout=15_000,
    )
    assert same_document(overview)
    overview.wait_for_selector(".grid .health.ok", timeout=10_000)
    cell = overview.inner_text(".grid tbody td.cell")
    assert "3.0" in cell, cell
    assert "1/1 healthy" in cell, cell
    # Health was loaded again for the new deployment only, not at every update of the board.
    assert len(health_loads) == 2, health_loads
    assert watched_overview.errors == []
    assert watched_deployment.errors == []
