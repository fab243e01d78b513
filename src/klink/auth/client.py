"""HTTP client of the auth service: who a token is, and the audit log (admin only)."""

from __future__ import annotations

from typing import Any

from klink.service.client import ServiceClient


class AuthClient(ServiceClient):
    def whoami(self) -> dict[str, Any]:
        """``{name, role, envs}`` of the client's token; Unauthorized when it is not valid."""
        result: dict[str, Any] = self.request("GET", "/whoami")
        return result

    def audit(self, **filters: Any) -> dict[str, Any]:
        """``{entries: […], next}``: the audit log, newest first, filtered by ``actor``,
        ``action``, ``target``, ``since``; ``before=next`` gives the next page."""
        params = {k: v for k, v in filters.items() if v not in (None, "")}
        result: dict[str, Any] = self.request("GET", "/audit", params=params)
        return result
