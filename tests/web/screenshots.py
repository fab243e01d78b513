"""Screenshots of the web UI's main pages for docs/web.md, from a real platform.

Starts ``klink serve`` in a temp home (the test harness's ``Platform``), deploys ``hello`` to
``dev`` for real three times (1.0, 2.0, then 3.0, which pauses after its instances are healthy
so that one deployment is in progress), adds a few more applications and environments, and
photographs each page in Debian's chromium at 1280 px wide.

    .venv/bin/python -m tests.web.screenshots docs/web
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.e2e.platform import Platform, local_hello, push_config
from tests.local.conftest import make_image
from tests.web.browser import ARGS, CHROMIUM

PAGES = {
    "overview": "/",
    "application": "/apps/hello",
    "deployment": "/deployments/{live}",
    "history": "/deployments",
    "diff": "/diff?a={first}&b={second}",
    "sign-in": "/sign-in",
}


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="klink-shots-") as tmp:
        root = Path(tmp)
        platform = Platform(root, {"KLINK_LOG_LEVEL": "ERROR"})
        try:
            platform.start()
            local_hello(platform, {"desiredCapacity": 2, "max": 2, "instanceHealthyAttempts": 20})
            for env in ("staging", "prod"):
                body = {"metadata": {"provider": "local"}}
                platform.call("PUT", f"/metadata/environments/{env}", json=body)
            for app in ("billing", "search"):
                body = {"metadata": {"contact": f"{app}@example.com"}}
                platform.call("PUT", f"/metadata/applications/{app}", json=body)
            ids = {}
            for key, version in (("first", "1.0"), ("second", "2.0")):
                image = make_image(platform.home, version, root / "images")
                record = platform.wait(platform.deploy("hello", "dev", image.id, f"ship {version}"))
                ids[key] = record["id"]
            push_config(
                platform,
                "hello",
                "dev",
                {
                    "deployment-params.json": {
                        "healthCheckIntervalSeconds": 0.5,
                        "targetGroups": ["hello"],
                        "desiredCapacity": 2,
                        "max": 2,
                        "instanceHealthyAttempts": 20,
                        "pauseAfterInstancesHealthy": True,
                    }
                },
            )
            image = make_image(platform.home, "3.0", root / "images")
            ids["live"] = platform.deploy("hello", "dev", image.id, "ship 3.0, paused to look")
            platform.wait(ids["live"])
            token = platform.call("POST", "/auth/tokens", json={"name": "alice", "role": "reader"})[
                "token"
            ]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                context = browser.new_context(viewport={"width": 1280, "height": 1000})
                page = context.new_page()
                page.goto(f"{platform.url}/sign-in")
                page.screenshot(path=str(out / "sign-in.png"))
                page.fill("#token", token)
                with page.expect_navigation():
                    page.click("button[type=submit]")
                for name, path in PAGES.items():
                    if name == "sign-in":
                        continue
                    page.goto(platform.url + path.format(**ids))
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=str(out / f"{name}.png"))
                browser.close()
        finally:
            platform.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/web"))
