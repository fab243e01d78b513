"""A real browser for the web UI's tests: Debian's chromium, driven by Playwright.

``playwright install`` cannot download browsers here, so Playwright launches the system's
``/usr/bin/chromium`` (scripts/lib/setup.sh installs it, and axe-core from npm into ``AXE``).
``Watched`` records what a page reports that a person would not see: console errors, page
errors (uncaught exceptions) and failed requests, so a test can assert there were none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, Request

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("KLINK_CHROMIUM", "/usr/bin/chromium")
AXE = Path(
    os.environ.get(
        "KLINK_AXE", ROOT / ".tmp" / "web-tests" / "node_modules" / "axe-core" / "axe.min.js"
    )
)
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Watched:
    page: Page
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        self.page.on("requestfailed", self._failed)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"console {message.type}: {message.text}")

    def _failed(self, request: Request) -> None:
        # A live stream the page closes on navigation is aborted by design.
        if "/events" in request.url:
            return
        self.errors.append(f"request failed: {request.url} {request.failure}")


def axe_violations(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[Any]:
    """axe-core's violations of ``impacts`` on the page as it is now."""
    if not AXE.is_file():
        pytest.fail(f"axe-core is not at {AXE}: scripts/test installs it (scripts/lib/setup.sh)")
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate("() => axe.run(document)")
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"][:5]],
        }
        for v in result["violations"]
        if v["impact"] in impacts
    ]
