"""HTTP client of the configuration service, for the orchestrator and other services.

``file(app, env, name, at)`` returns the resolved commit with the parsed file, so a caller can
record exactly which commit it deployed; ``resolve`` turns any ref into that 40-hex commit.
"""

from __future__ import annotations

from typing import Any

from klink.service.client import ServiceClient


class ConfigClient(ServiceClient):
    def create_repo(self, app: str, env: str) -> dict[str, Any]:
        """Create ``{app}-{env}`` (idempotent); ``{app, env, name, cloneUrl, created}``."""
        result: dict[str, Any] = self.request("POST", f"/repos/{app}/{env}")
        return result

    def repos(self, app: str | None = None) -> list[dict[str, Any]]:
        path = "/repos" if app is None else f"/repos/{app}"
        result: list[dict[str, Any]] = self.request("GET", path)["repos"]
        return result

    def resolve(self, app: str, env: str, ref: str = "HEAD") -> str:
        """The 40-hex commit ``ref`` names (a hash, ``HEAD``, ``HEAD~n``, a branch)."""
        result: str = self.request("GET", f"/repos/{app}/{env}/resolve", params={"at": ref})["hash"]
        return result

    def file(self, app: str, env: str, name: str, at: str = "HEAD") -> tuple[str, Any]:
        """(resolved commit, parsed content) of config file ``name`` at ``at``."""
        body = self.request("GET", f"/repos/{app}/{env}/files/{name}", params={"at": at})
        return str(body["hash"]), body["data"]

    def commits(
        self, app: str, env: str, *, limit: int = 50, before: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = before
        body = self.request("GET", f"/repos/{app}/{env}/commits", params=params)
        return list(body["commits"]), body.get("next")

    def diff(self, app: str, env: str, old: str, new: str = "HEAD") -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "GET", f"/repos/{app}/{env}/diff", params={"from": old, "to": new}
        )
        return result

    def validate(self, file: str, data: Any, *, provider: str = "aws") -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", "/validate", json={"file": file, "data": data, "provider": provider}
        )
        return result
