"""HTTP client of the infrastructure service, for other services (and tests)."""

from __future__ import annotations

from typing import Any

from klink.service.client import ServiceClient


class InfraClient(ServiceClient):
    def plan(self, app: str, env: str, at: str = "HEAD") -> dict[str, Any]:
        """``{commit, actions, kept, not_applicable, plan_hash, empty, …}``."""
        result: dict[str, Any] = self.request("GET", f"/{app}/{env}/plan", params={"at": at})
        return result

    def apply(
        self, app: str, env: str, *, at: str = "HEAD", plan_hash: str | None = None
    ) -> dict[str, Any]:
        """The recorded apply: ``{id, status, result, actions, commit, actor, …}``; Conflict
        (409) when ``plan_hash`` is given and the plan changed."""
        body: dict[str, Any] = {"at": at}
        if plan_hash is not None:
            body["plan_hash"] = plan_hash
        result: dict[str, Any] = self.request("POST", f"/{app}/{env}/apply", json=body)
        return result

    def history(self, app: str, env: str, limit: int = 50) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request(
            "GET", f"/{app}/{env}/history", params={"limit": limit}
        )["history"]
        return result

    def drift(self, env: str | None = None) -> list[dict[str, Any]]:
        params = {"env": env} if env else {}
        result: list[dict[str, Any]] = self.request("GET", "/drift", params=params)["reports"]
        return result

    def run_drift(self, env: str | None = None) -> dict[str, Any]:
        params = {"env": env} if env else {}
        result: dict[str, Any] = self.request("POST", "/drift/run", params=params)
        return result
