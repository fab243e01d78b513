"""HTTP client of the bake service: the images of an application (reads only)."""

from __future__ import annotations

from typing import Any

from klink.service.client import ServiceClient


class BakeClient(ServiceClient):
    def images(self, app: str, target: str | None = None) -> list[dict[str, Any]]:
        """The images of ``app`` on each bake target, newest first, with their tags."""
        params = {"target": target} if target else {}
        result: list[dict[str, Any]] = self.request("GET", f"/images/{app}", params=params)[
            "images"
        ]
        return result

    def targets(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/targets")["targets"]
        return result
