"""HTTP client of the metadata service, for other services (and tests)."""

from __future__ import annotations

from typing import Any

from klink.service.client import ServiceClient


class MetadataClient(ServiceClient):
    def application(self, name: str) -> dict[str, Any]:
        """``{name, metadata, created_at, updated_at}``; NotFound if missing."""
        result: dict[str, Any] = self.request("GET", f"/applications/{name}")
        return result

    def environment(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/environments/{name}")
        return result

    def applications(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request(
            "GET", "/applications", params={"view": "full"}
        )["applications"]
        return result

    def environments(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request(
            "GET", "/environments", params={"view": "full"}
        )["environments"]
        return result

    def set_property(self, kind: str, name: str, key: str, value: Any) -> None:
        self.request("PUT", f"/{kind}s/{name}/{key}", json={"value": value})
