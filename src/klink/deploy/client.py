"""HTTP client of the deploy service, for other services and scripts."""

from __future__ import annotations

from typing import Any

from klink.service.client import ServiceClient


class DeployClient(ServiceClient):
    def deploy(
        self, app: str, env: str, image: str, message: str, commit: str | None = None
    ) -> str:
        body: dict[str, Any] = {"image": image, "message": message}
        if commit:
            body["commit"] = commit
        return str(self.request("POST", f"/{app}/{env}", json=body)["id"])

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/deployments/{deployment_id}")
        return result

    def deployments(self, **filters: Any) -> list[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v is not None}
        result: list[dict[str, Any]] = self.request("GET", "/deployments", params=params)[
            "deployments"
        ]
        return result

    def logs(self, deployment_id: str, since: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "GET", f"/deployments/{deployment_id}/logs", params={"since": since}
        )
        return result

    def control(self, app: str, env: str, verb: str, **body: Any) -> dict[str, Any]:
        """``verb``: pause, resume, cancel, retry, undo, unlock, rollback, redeploy."""
        result: dict[str, Any] = self.request("POST", f"/{app}/{env}/{verb}", json=body or None)
        return result

    def running(self, app: str | None = None) -> list[dict[str, Any]]:
        """What runs in each app+env by history: ``{app, env, version, image, since, …}``."""
        params = {"app": app} if app else {}
        result: list[dict[str, Any]] = self.request("GET", "/running", params=params)["running"]
        return result

    def in_progress(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/in-progress")["deployments"]
        return result

    def tasks(self, deployment_id: str) -> dict[str, Any]:
        """``{id, status, cursor, tasks, plan}``: every action's status, attempts and times."""
        result: dict[str, Any] = self.request("GET", f"/deployments/{deployment_id}/tasks")
        return result

    def boxes(self, app: str, env: str) -> dict[str, Any]:
        """The current group of app+env and its instances, from the provider."""
        result: dict[str, Any] = self.request("GET", f"/{app}/{env}/boxes")
        return result

    def lock(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/lock")
        return result
