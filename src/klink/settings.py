"""Typed settings, read once from ``KLINK_*`` environment variables.

``Settings.from_env(mapping)`` takes the environment as a mapping so tests pass a dict. A bad
value raises SettingsError naming the variable; ``klink serve`` turns that into one line and a
non-zero exit.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeVar

from klink.errors import SettingsError

T = TypeVar("T")

SERVICES = ("auth", "metadata", "config", "build", "bake", "infra", "deploy", "chat")


SLACK_API_URL = "https://slack.com/api/"


def _url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http(s):// URL")
    return value.rstrip("/") + "/"


def _int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _cron(value: str) -> str:
    from croniter import croniter

    if not croniter.is_valid(value):
        raise ValueError("not a cron expression (e.g. '0 4 * * 1': Mondays 04:00 UTC)")
    return value


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be one of 1/0, true/false, yes/no, on/off")


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError("must be HOST:PORT")
    number = int(port)
    if not 0 <= number <= 65535:
        raise ValueError("port must be 0-65535")
    return host.strip("[]"), number


def private_dir(path: Path) -> Path:
    """``path`` made (parents too) and the owner's only (0700), also if it was there wider."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != 0o700:
        path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """``path``, if it exists, made the owner's only (0600)."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_IMODE(path.stat().st_mode) != 0o600:
            path.chmod(0o600)
    return path


def open_private(path: Path | str) -> BinaryIO:
    """``path`` opened for appending, created 0600 (and made 0600 if it was wider): logs."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


def _listen_text(value: str) -> str:
    parse_listen(value)
    return value


def _get(env: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except (ValueError, TypeError) as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}", field=name) from None


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    listen_host: str = "127.0.0.1"
    listen_port: int = 8642
    public_url: str = "http://127.0.0.1:8642"
    service_urls: Mapping[str, str] = field(default_factory=dict)
    log_level: str = "INFO"
    # The deployment engine runs inside `klink serve` unless turned off (then run `klink worker`).
    engine_enabled: bool = True
    engine_workers: int = 4
    lease_seconds: float = 30.0
    # An active deployment without progress for this long is reported (klink.deploy.stuck).
    stuck_seconds: float = 600.0
    # HOST:PORT where `klink worker` serves /metrics (Prometheus); empty: not served.
    worker_metrics_listen: str = ""
    notify_webhook_url: str = ""
    notify_slack_url: str = ""
    build_timeout_seconds: float = 900.0
    bake_timeout_seconds: float = 1800.0
    bake_base_schedule: str = "0 4 * * 1"
    images_keep: int = 5
    # Background schedules (base bakes, image cleanup, infra drift) can be turned off for tests.
    schedules_enabled: bool = True
    # Chat (Slack, Hubot). Secrets are kept out of repr(), so no log line can print them.
    slack_signing_secret: str = field(default="", repr=False)
    slack_bot_token: str = field(default="", repr=False)
    slack_api_url: str = SLACK_API_URL
    hubot_secret: str = field(default="", repr=False)
    # The largest request body a service parses (JSON); streamed uploads are not held to it.
    max_body_bytes: int = 1024 * 1024
    # How long a healthcheck's result per dependency is reused.
    health_cache_seconds: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(
            _get(env, "KLINK_HOME", str, str(Path.home() / ".local" / "share" / "klink"))
        ).expanduser()
        database_url = _get(env, "KLINK_DATABASE_URL", str, f"sqlite:///{home / 'klink.db'}")
        host, port = _get(env, "KLINK_LISTEN", parse_listen, ("127.0.0.1", 8642))
        url_host = f"[{host}]" if ":" in host else host
        public_url = _get(env, "KLINK_PUBLIC_URL", str, f"http://{url_host}:{port}").rstrip("/")
        service_urls = {
            name: _get(env, f"KLINK_{name.upper()}_URL", str, f"{public_url}/{name}").rstrip("/")
            for name in SERVICES
        }
        log_level = _get(env, "KLINK_LOG_LEVEL", str, "INFO").upper()
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise SettingsError(
                f"KLINK_LOG_LEVEL={log_level!r}: must be DEBUG, INFO, WARNING or ERROR",
                field="KLINK_LOG_LEVEL",
            )
        return cls(
            home=home,
            database_url=database_url,
            listen_host=host,
            listen_port=port,
            public_url=public_url,
            service_urls=service_urls,
            log_level=log_level,
            engine_enabled=_get(env, "KLINK_ENGINE", _bool, True),
            engine_workers=_get(env, "KLINK_ENGINE_WORKERS", _int, 4),
            lease_seconds=_get(env, "KLINK_LEASE_SECONDS", _float, 30.0),
            stuck_seconds=_get(env, "KLINK_STUCK_SECONDS", _float, 600.0),
            worker_metrics_listen=_get(env, "KLINK_WORKER_METRICS", _listen_text, ""),
            notify_webhook_url=_get(env, "KLINK_NOTIFY_WEBHOOK_URL", str, ""),
            notify_slack_url=_get(env, "KLINK_NOTIFY_SLACK_URL", str, ""),
            build_timeout_seconds=_get(env, "KLINK_BUILD_TIMEOUT", _float, 900.0),
            bake_timeout_seconds=_get(env, "KLINK_BAKE_TIMEOUT", _float, 1800.0),
            bake_base_schedule=_get(env, "KLINK_BAKE_BASE_SCHEDULE", _cron, "0 4 * * 1"),
            images_keep=_get(env, "KLINK_IMAGES_KEEP", _int, 5),
            schedules_enabled=_get(env, "KLINK_SCHEDULES", _bool, True),
            slack_signing_secret=_get(env, "KLINK_SLACK_SIGNING_SECRET", str, ""),
            slack_bot_token=_get(env, "KLINK_SLACK_BOT_TOKEN", str, ""),
            slack_api_url=_get(env, "KLINK_SLACK_API_URL", _url, SLACK_API_URL),
            hubot_secret=_get(env, "KLINK_HUBOT_SECRET", str, ""),
            max_body_bytes=_get(env, "KLINK_MAX_BODY_BYTES", _int, 1024 * 1024),
            health_cache_seconds=_get(env, "KLINK_HEALTH_CACHE_SECONDS", _float, 5.0),
        )

    def service_url(self, name: str) -> str:
        return self.service_urls.get(name, f"{self.public_url}/{name}")

    @property
    def admin_token_path(self) -> Path:
        return self.home / "admin-token"
