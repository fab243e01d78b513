"""The base of every service's HTTP client.

A client wraps an ``httpx.Client`` that already knows its base URL and token: a socket client
in production, an in-process one in tests. Error bodies come back as Klink's own exceptions, so
a caller of ``MetadataClient`` handles ``NotFound`` exactly as a caller of the store would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from klink.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    KlinkError,
    Locked,
    NotFound,
    ProviderError,
    QuotaExceeded,
    Throttled,
    Unauthorized,
    Unavailable,
)

if TYPE_CHECKING:
    import httpx

_BY_STATUS: dict[int, type[KlinkError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidInput,
    429: QuotaExceeded,
    502: ProviderError,
    503: Throttled,
    504: Unavailable,
}


def error_from_response(response: httpx.Response) -> KlinkError:
    try:
        body = response.json()
        error = body["error"]
        message, code, field = str(error["message"]), error.get("code"), error.get("field")
    except (ValueError, KeyError, TypeError):
        message, code, field = response.text[:500] or response.reason_phrase, None, None
    cls = _BY_STATUS.get(response.status_code, KlinkError)
    if cls is Conflict and code == "locked":
        cls = Locked
    if response.status_code == 503 and code == "unavailable":
        cls = Unavailable
    exc = cls(message, field=field)
    if code:
        exc.code = code
    exc.status = response.status_code
    return exc


class ServiceClient:
    """``token``, when given, is sent instead of the client's own (the web UI calls the
    services with the signed-in person's token, over the same shared connection pool)."""

    def __init__(self, http: httpx.Client, token: str | None = None) -> None:
        self.http = http
        self.token = token

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        if self.token is not None:
            kwargs["headers"] = {
                **kwargs.get("headers", {}),
                "Authorization": f"Bearer {self.token}",
            }
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(f"cannot reach {self.http.base_url}{path}: {exc}") from exc
        if response.status_code >= 400:
            raise error_from_response(response)
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text
