"""HTTP client of the build service, for the bake service (and tests)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from klink.errors import InvalidInput, KlinkError
from klink.service.client import ServiceClient, error_from_response


class HashingReader(io.RawIOBase):
    """A read-once file over a download that hashes what passes through it.

    ``verify`` reads what the consumer left (a tar reader stops before the archive's padding)
    and raises InvalidInput unless the whole download has the expected SHA-256.
    """

    def __init__(self, chunks: Iterator[bytes], expected: str, what: str) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._digest = hashlib.sha256()
        self.expected = expected
        self.what = what

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._digest.update(chunk)
            self._buffer = chunk
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size

    def verify(self) -> str:
        while self.read(1 << 20):
            pass
        actual = self._digest.hexdigest()
        if self.expected and actual != self.expected:
            raise InvalidInput(
                f"{self.what} has SHA-256 {actual}, the store says {self.expected}",
                field="sha256",
            )
        return actual


class BuildClient(ServiceClient):
    def artifact(self, app: str, version: str) -> dict[str, Any]:
        """``{app, version, sha256, size, created_at, source, filename}``; NotFound if missing."""
        result: dict[str, Any] = self.request("GET", f"/artifacts/{app}/{version}")
        return result

    def artifacts(self, app: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", f"/artifacts/{app}")["artifacts"]
        return result

    @contextmanager
    def stream(self, app: str, version: str) -> Iterator[HashingReader]:
        """The artifact as a read-once file, hashed as it is read (``reader.verify()``)."""
        import httpx

        try:
            with self.http.stream("GET", f"/artifacts/{app}/{version}/file") as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_response(response)
                expected = response.headers.get("x-checksum-sha256", "")
                yield HashingReader(response.iter_bytes(1 << 20), expected, f"{app} {version}")
        except httpx.HTTPError as exc:
            raise KlinkError(f"cannot download {app} {version}: {exc}") from exc

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
