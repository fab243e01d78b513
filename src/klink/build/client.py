"""HTTP client of the build service, for the bake service (and tests)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from klink.errors import InvalidInput, KlinkError
from klink.service.client import ServiceClient, error_from_response


class BuildClient(ServiceClient):
    def artifact(self, app: str, version: str) -> dict[str, Any]:
        """``{app, version, sha256, size, created_at, source, filename}``; NotFound if missing."""
        result: dict[str, Any] = self.request("GET", f"/artifacts/{app}/{version}")
        return result

    def artifacts(self, app: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", f"/artifacts/{app}")["artifacts"]
        return result

    def download(self, app: str, version: str, dest: Path) -> str:
        """Write the artifact to ``dest``; return its SHA-256, verified against the store's."""
        import httpx

        digest = hashlib.sha256()
        try:
            with self.http.stream("GET", f"/artifacts/{app}/{version}/file") as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_response(response)
                expected = response.headers.get("x-checksum-sha256")
                with open(dest, "wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise KlinkError(f"cannot download {app} {version}: {exc}") from exc
        actual = digest.hexdigest()
        if expected and actual != expected:
            raise InvalidInput(
                f"downloaded {app} {version} has SHA-256 {actual}, the store says {expected}",
                field="sha256",
            )
        return actual
