"""How the CLI reaches the server: URL and token resolution, one request helper, one error line.

Server URL and token come from, in order: ``--server``/``--token``; ``KLINK_SERVER``/
``KLINK_TOKEN``; ``~/.config/klink/config.toml`` (``server = "…"``, ``token = "…"``); and on the
server's own machine, ``KLINK_LISTEN`` and the admin token in ``KLINK_HOME/admin-token``.
The transport is a plain HTTP/1.1 client on a socket (see ``Api``). ``client_for(args)`` is
how every command gets its client: the chat service runs the same handlers with its own
server, token and acting-as headers in ``args``.
"""

from __future__ import annotations

import os

from klink.cli.http import PATH_SAFE, Response, Wire, query, quote, split_url

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


class Api:
    """A small JSON client on a socket, with one kept-alive connection.

    httpx (0.2 s to import) and even http.client (20 ms: the email package) would cost more
    start-up than the rest of the CLI together; the CLI makes a handful of requests to one
    server, which this plain HTTP/1.1 does well: JSON bodies, streamed uploads (chunked) and
    streamed answers (read as they arrive).
    """

    def __init__(self, target: Target, timeout: float = 60.0) -> None:
        self.target = target
        self.timeout = timeout
        parts = split_url(target.server)
        if parts is None:
            raise CliError(f"server URL {target.server!r} must be http(s)://HOST[:PORT]", code=2)
        scheme, self._host, port, path = parts
        self._https = scheme == "https"
        self._port = port or (443 if self._https else 80)
        self._base = path.rstrip("/")
        self._connection: Wire | None = None
        self.headers = {"Accept": "application/json", "User-Agent": "klink-cli"}
        if target.token:
            self.headers["Authorization"] = f"Bearer {target.token}"

    def _connect(self, timeout: float | None) -> Wire:
        return Wire(self._host, self._port, self._https, timeout or self.timeout)

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
        url = "".join(c if c in PATH_SAFE else quote(c) for c in self._base + path)
        if params:
            given = {k: v for k, v in params.items() if v is not None}
            if given:
                url += "?" + query(given)
        all_headers = dict(self.headers)
        body: Any = content
        if json is not None:
            from klink.cli import jsonlite

            body = jsonlite.dumps(json).encode()
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        streamed = body is not None and not isinstance(body, bytes)
        if streamed:
            all_headers["Transfer-Encoding"] = "chunked"
        elif body is not None or method in ("POST", "PUT", "PATCH"):
            all_headers["Content-Length"] = str(len(body or b""))
        host = f"[{self._host}]" if ":" in self._host else self._host
        head = f"{method} {url or '/'} HTTP/1.1\r\nHost: {host}:{self._port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in all_headers.items()) + "\r\n"
        for attempt in (1, 2):
            try:
                if self._connection is None or timeout is not None:
                    if self._connection is not None:
                        self._connection.close()
                    self._connection = self._connect(timeout)
                wire = self._connection
                if streamed:
                    wire.sock.sendall(head.encode("latin-1"))
                    for chunk in body:
                        if chunk:
                            wire.sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    wire.sock.sendall(b"0\r\n\r\n")
                else:
                    wire.sock.sendall(head.encode("latin-1") + (body or b""))
                return Response(wire, method)
            except (ConnectionError, OSError) as exc:
                if self._connection is not None:
                    self._connection.close()
                self._connection = None
                # A kept-alive connection the server closed: try once more on a new one.
                if attempt == 2 or isinstance(exc, TimeoutError) or streamed:
                    raise CliError(
                        f"cannot reach the Klink server at {self.target.server} ({exc}); "
                        "is `klink serve` running? (--server or KLINK_SERVER to choose another)"
                    ) from None
        raise AssertionError("unreachable")

    def _finish(self, response: Response) -> None:
        """After a body was read: keep the connection only if the server will reuse it."""
        if not response.reusable and self._connection is not None:
            self._connection.close()
            self._connection = None

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; the JSON (or text) of a 2xx answer, else CliError with the server's
        message."""
        response = self.send(method, path, **kwargs)
        response.content  # noqa: B018 - read it all, so the connection can be reused
        self._finish(response)
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
        response.content  # noqa: B018 - read it, so the connection can be reused
        self._finish(response)
        if response.status_code == 404:
            return False
        if response.status_code >= 400:
            raise CliError(describe_error(response))
        return True

    def stream(self, method: str, path: str, **kwargs: Any) -> _Stream:
        """A response whose body is read as it arrives: ``with api.stream(…) as r:
        for line in r.iter_lines()``."""
        return _Stream(self, method, path, kwargs)


def describe_error(response: Any) -> str:
    try:
        error = response.json()["error"]
        message = str(error["message"])
        field = error.get("field")
    except (ValueError, KeyError, TypeError):
        message, field = (response.text.strip()[:300] or response.reason_phrase), None
    suffix = f" [{field}]" if field and field not in message else ""
    return f"{message}{suffix} (HTTP {response.status_code})"


class _Stream:
    """``Api.stream``'s context manager (contextlib costs start-up; this is all it needs)."""

    def __init__(self, api: Api, method: str, path: str, kwargs: dict[str, Any]) -> None:
        self.api, self.method, self.path, self.kwargs = api, method, path, kwargs

    def __enter__(self) -> Response:
        response = self.api.send(self.method, self.path, **self.kwargs)
        if response.status_code >= 400:
            # Read the error body before the connection goes: it may not have arrived whole.
            message = describe_error(response)
            self.__exit__()
            raise CliError(message)
        return response

    def __exit__(self, *_exc: object) -> None:
        # A partly read stream leaves the connection unusable for the next request.
        if self.api._connection is not None:
            self.api._connection.close()
            self.api._connection = None


def client_for(args: Any, timeout: float = 60.0) -> Api:
    """The client a command's handler uses: ``--server``/``--token`` (or their fallbacks),
    plus ``args.headers`` when a caller other than the terminal (chat) sets them."""
    api = Api(resolve(args.server, args.token), timeout=timeout)
    api.headers.update(getattr(args, "headers", None) or {})
    return api
