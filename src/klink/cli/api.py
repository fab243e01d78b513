"""How the CLI reaches the server: URL and token resolution, one request helper, one error line.

Server URL and token come from, in order: ``--server``/``--token``; ``KLINK_SERVER``/
``KLINK_TOKEN``; ``~/.config/klink/config.toml`` (``server = "…"``, ``token = "…"``); and on the
server's own machine, ``KLINK_LISTEN`` and the admin token in ``KLINK_HOME/admin-token``.
The transport is the standard library's http.client (httpx costs 0.2 s to import).
"""

from __future__ import annotations

import os
from contextlib import contextmanager

# Kept free of typing, dataclasses and pathlib: they cost more start-up than the CLI's own work.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any


class CliError(Exception):
    """One clear line on stderr and exit code ``code`` (1: the operation failed)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _config_file() -> dict[str, Any]:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    path = os.path.join(base, "klink", "config.toml")
    if not os.path.exists(path):
        return {}
    import tomllib

    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None


def klink_home() -> str:
    raw = os.environ.get("KLINK_HOME")
    return os.path.expanduser(raw) if raw else os.path.expanduser("~/.local/share/klink")


def default_server() -> str:
    listen = os.environ.get("KLINK_LISTEN") or "127.0.0.1:8642"
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class Target:
    def __init__(self, server: str, token: str | None) -> None:
        self.server = server
        self.token = token


def resolve(server: str | None, token: str | None) -> Target:
    config: dict[str, Any] | None = None
    if server is None:
        server = os.environ.get("KLINK_SERVER")
    if server is None:
        config = _config_file()
        server = config.get("server")
    if token is None:
        token = os.environ.get("KLINK_TOKEN")
    if token is None:
        config = _config_file() if config is None else config
        token = config.get("token")
    if token is None:
        try:
            with open(os.path.join(klink_home(), "admin-token")) as handle:
                token = handle.read().strip() or None
        except OSError:
            token = None
    return Target(server=(server or default_server()).rstrip("/"), token=token)


class Response:
    """What a request got back: status, headers and body (read, or a stream of lines)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.status_code: int = raw.status
        self.headers = {k.lower(): v for k, v in raw.getheaders()}
        self.reason_phrase: str = raw.reason
        self._content: bytes | None = None

    @property
    def content(self) -> bytes:
        if self._content is None:
            self._content = self.raw.read()
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        import json

        return json.loads(self.content)

    def iter_lines(self) -> Iterator[str]:
        """Lines as they arrive (for live output of streamed responses)."""
        while True:
            line = self.raw.readline()
            if not line:
                return
            yield line.decode("utf-8", "replace").rstrip("\r\n")


class Api:
    """A small JSON client on the standard library's http.client.

    httpx would cost more start-up than the rest of the CLI together (about 0.2 s to import);
    the CLI makes a handful of requests to one server, which http.client does well, with one
    kept-alive connection.
    """

    def __init__(self, target: Target, timeout: float = 60.0) -> None:
        from urllib.parse import urlsplit

        self.target = target
        self.timeout = timeout
        parts = urlsplit(target.server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError(f"server URL {target.server!r} must be http(s)://HOST[:PORT]", code=2)
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._base = parts.path.rstrip("/")
        self._connection: Any = None
        self.headers = {"Accept": "application/json", "User-Agent": "klink-cli"}
        if target.token:
            self.headers["Authorization"] = f"Bearer {target.token}"

    def _connect(self, timeout: float | None) -> Any:
        import http.client

        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=timeout or self.timeout)

    def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        content: bytes | Iterator[bytes] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Send one request; the response body is not read yet (see Response)."""
        import json as _json
        from urllib.parse import quote, urlencode

        url = self._base + quote(path, safe="/:@!$&'()*+,;=-._~")
        if params:
            query = {k: v for k, v in params.items() if v is not None}
            if query:
                url += "?" + urlencode(query, doseq=True)
        all_headers = dict(self.headers)
        body: Any = content
        if json is not None:
            body = _json.dumps(json).encode()
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        if body is not None and not isinstance(body, bytes):
            all_headers.setdefault("Transfer-Encoding", "chunked")
        for attempt in (1, 2):
            if self._connection is None or timeout is not None:
                self._connection = self._connect(timeout)
            try:
                self._connection.request(
                    method,
                    url,
                    body=body,
                    headers=all_headers,
                    encode_chunked=body is not None and not isinstance(body, bytes),
                )
                return Response(self._connection.getresponse())
            except (ConnectionError, OSError) as exc:
                self._connection.close()
                self._connection = None
                # A kept-alive connection the server closed: try once more on a new one.
                if (
                    attempt == 2
                    or isinstance(exc, TimeoutError)
                    or not isinstance(body, bytes | None)
                ):
                    raise CliError(
                        f"cannot reach the Klink server at {self.target.server} ({exc}); "
                        "is `klink serve` running? (--server or KLINK_SERVER to choose another)"
                    ) from None
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; the JSON (or text) of a 2xx answer, else CliError with the server's
        message."""
        response = self.send(method, path, **kwargs)
        if response.status_code >= 400:
            raise CliError(describe_error(response))
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def exists(self, path: str) -> bool:
        """Whether GET ``path`` finds something (404: no; any other error is raised)."""
        response = self.send("GET", path)
        if response.status_code == 404:
            response.content  # noqa: B018 - read it, so the connection can be reused
            return False
        if response.status_code >= 400:
            raise CliError(describe_error(response))
        response.content  # noqa: B018
        return True

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[Response]:
        """A response whose body is read as it arrives: ``for line in r.iter_lines()``."""
        response = self.send(method, path, **kwargs)
        try:
            if response.status_code >= 400:
                raise CliError(describe_error(response))
            yield response
        finally:
            # A partly read stream leaves the connection unusable for the next request.
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def describe_error(response: Any) -> str:
    try:
        error = response.json()["error"]
        message = str(error["message"])
        field = error.get("field")
    except (ValueError, KeyError, TypeError):
        message, field = (response.text.strip()[:300] or response.reason_phrase), None
    suffix = f" [{field}]" if field and field not in message else ""
    return f"{message}{suffix} (HTTP {response.status_code})"
