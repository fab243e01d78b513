"""How the CLI reaches the server: URL and token resolution, one request helper, one error line.

Server URL and token come from, in order: ``--server``/``--token``; ``KLINK_SERVER``/
``KLINK_TOKEN``; ``~/.config/klink/config.toml`` (``server = "…"``, ``token = "…"``); and on the
server's own machine, ``KLINK_LISTEN`` and the admin token in ``KLINK_HOME/admin-token``.
httpx is imported here, only by commands that talk to the server.
"""

from __future__ import annotations

import os

# Kept free of typing, dataclasses and pathlib: they cost more start-up than the CLI's own work.
TYPE_CHECKING = False
if TYPE_CHECKING:
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
    def __init__(self, target: Target, timeout: float = 60.0) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        self.target = target
        self.client = httpx.Client(base_url=target.server, headers=headers, timeout=timeout)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(
                f"cannot reach the Klink server at {self.target.server} ({exc}); "
                "is `klink serve` running? (--server or KLINK_SERVER to choose another)"
            ) from None
        if response.status_code >= 400:
            raise CliError(describe_error(response))
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def stream(self, method: str, path: str, **kwargs: Any) -> Any:
        """A streaming response context (``with api.stream(...) as response``)."""
        return self.client.stream(method, path, **kwargs)


def describe_error(response: Any) -> str:
    try:
        error = response.json()["error"]
        message = str(error["message"])
        field = error.get("field")
    except (ValueError, KeyError, TypeError):
        message, field = (response.text.strip()[:300] or response.reason_phrase), None
    suffix = f" [{field}]" if field and field not in message else ""
    return f"{message}{suffix} (HTTP {response.status_code})"
